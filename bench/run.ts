/**
 * `npm run bench`: the stage runner's overhead and the parser's speed, measured in one run on the
 * same generated 300k-line amazon-ebs log (written to a temporary folder, removed afterwards).
 *
 * - runner wall time ÷ bare stand-in packer wall time, with and without Node's startup (the time
 *   the runner's CLI takes to load and exit on `--help`);
 * - parser throughput (MB/s) in-process, next to `grep 'artifact,0,id' | cut -d, -f6`;
 * - a 1 GiB installer's hash: read whole, from the stat-keyed cache, through git's index
 *   (bench/installer-hash.ts; `npm run bench -- installers` runs only this part).
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { MachineReadableParser } from "../src/machine-readable.ts";
import { selectStageImage } from "../src/runner/image.ts";
import { containsCredential } from "../src/runner/redact.ts";
import { StageResultSchema } from "../src/runner/result.ts";
import { shellQuote } from "../src/shell.ts";
import { benchInstallerHash } from "./installer-hash.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FAKE_PACKER = join(ROOT, "test/fixtures/fake-packer");
const CLI = join(ROOT, "src/runner/cli.ts");
const DRIVER = join(ROOT, "src/driver/cli.ts");
const LINES = 300_000;
const RUNS = 5;

function generateLog(path: string): { bytes: number; amiId: string } {
  const amiId = "ami-0123456789abcdef0";
  const head = [
    "1732540801,,ui,say,==> amazon-ebs.jira: Prevalidating any provided VPC information",
    "1732540803,,ui,say,==> amazon-ebs.jira: Launching a source AWS instance...",
    "1732540806,,ui,message,    amazon-ebs.jira: Instance ID: i-0f1e2d3c4b5a69788",
    "1732540876,,ui,say,==> amazon-ebs.jira: Provisioning with shell script: packer/jira/provision.sh",
  ];
  const tail = [
    `1732541127,,ui,say,Build 'amazon-ebs.jira' finished after 5 minutes 26 seconds.`,
    "1732541127,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:",
    "1732541127,amazon-ebs.jira,artifact-count,1",
    "1732541127,amazon-ebs.jira,artifact,0,builder-id,mitchellh.amazonebs",
    `1732541127,amazon-ebs.jira,artifact,0,id,ap-northeast-1:${amiId}`,
    `1732541127,amazon-ebs.jira,artifact,0,string,AMIs were created:\\nap-northeast-1: ${amiId}\\n`,
    "1732541127,amazon-ebs.jira,artifact,0,files-count,0",
    "1732541127,amazon-ebs.jira,artifact,0,end",
    `1732541127,,ui,say,--> amazon-ebs.jira: AMIs were created:\\nap-northeast-1: ${amiId}\\n`,
  ];
  const body: string[] = [];
  // Provisioning chatter in the shapes Chef and dnf produce: escaped commas, escaped newlines, progress lines.
  for (let i = 0; body.length < LINES - head.length - tail.length; i++) {
    const ts = 1732540877 + Math.floor(i / 100);
    switch (i % 4) {
      case 0:
        body.push(`${ts},,ui,message,    amazon-ebs.jira:   * dnf_package[pkg-${i}] action install`);
        break;
      case 1:
        body.push(`${ts},,ui,message,    amazon-ebs.jira:     - install version 1:17.0.${i % 100}+11-1.amzn2023.1 of package pkg-${i}`);
        break;
      case 2:
        body.push(`${ts},,ui,message,    amazon-ebs.jira: Installed: pkg-${i}%!(PACKER_COMMA) deps-${i}%!(PACKER_COMMA) more-${i}`);
        break;
      default:
        body.push(`${ts},,ui,say,==> amazon-ebs.jira: step ${i}\\n    detail line one\\n    detail line two`);
    }
  }
  const text = `${[...head, ...body, ...tail].join("\n")}\n`;
  writeFileSync(path, text);
  return { bytes: Buffer.byteLength(text), amiId };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

function print(rows: Array<[string, string]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
}

async function main(): Promise<void> {
  // `npm run bench -- installers` measures only the installer hash.
  if (process.argv.includes("installers")) return print(benchInstallerHash());
  const work = join(tmpdir(), `runner-bench-${process.pid}`);
  mkdirSync(join(work, "template"), { recursive: true });
  try {
    const logPath = join(work, "packer-300k.log");
    const { bytes, amiId } = generateLog(logPath);
    writeFileSync(join(work, "template", "main.pkr.hcl"), 'variable "stage" {\n  type = string\n}\n');
    const env = { PACKER_BIN: FAKE_PACKER, FAKE_PACKER_LOG: logPath };
    const buildArgs = ["build", "-machine-readable", join(work, "template")];

    const bare: number[] = [];
    const runner: number[] = [];
    const startup: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Bare stand-in, writing to a file like the runner has it do.
      const out = openSync(join(work, `bare-${i}.log`), "w");
      bare.push(await timed(async () => void (await execa(FAKE_PACKER, buildArgs, { env, stdout: out as 3, stdin: "ignore" }))));
      closeSync(out);

      runner.push(
        await timed(async () => {
          const result = await execa(process.execPath, ["--import", "tsx", CLI, "--stage", "bench", "--template", join(work, "template"), "--log-dir", join(work, `logs-${i}`)], {
            cwd: ROOT,
            env,
          });
          const parsed = StageResultSchema.parse(JSON.parse(result.stdout));
          if (parsed.amiId !== amiId) throw new Error(`runner found ${parsed.amiId}, expected ${amiId}`);
        }),
      );
      startup.push(await timed(async () => void (await execa(process.execPath, ["--import", "tsx", CLI, "--help"], { cwd: ROOT }))));
    }

    // The driver without a Pulumi CLI must stop before it loads the Automation API.
    const bareNode: number[] = [];
    const driverNoCli: number[] = [];
    const noCliEnv = { PATH: dirname(process.execPath), HOME: tmpdir() };
    for (let i = 0; i < RUNS; i++) {
      bareNode.push(await timed(async () => void (await execa(process.execPath, ["--import", "tsx", "-e", ""], { cwd: ROOT, env: noCliEnv, extendEnv: false }))));
      driverNoCli.push(
        await timed(async () => {
          const result = await execa(process.execPath, ["--import", "tsx", DRIVER, "up", "--stack", "dev"], { cwd: ROOT, env: noCliEnv, extendEnv: false, reject: false });
          if (result.exitCode !== 3) throw new Error(`driver without the CLI exited ${result.exitCode}: ${result.stderr}`);
        }),
      );
    }

    // Parser alone, in-process, on the same bytes (the runner also scans each chunk for credentials).
    const text = readFileSync(logPath, "utf8");
    const parseOnly: number[] = [];
    const parseAndScan: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      parseOnly.push(
        await timed(async () => {
          const parser = new MachineReadableParser();
          for (let at = 0; at < text.length; at += 1 << 20) parser.push(text.slice(at, at + (1 << 20)));
          const selection = selectStageImage(parser.end());
          if (selection.kind !== "one" || selection.image.amiId !== amiId) throw new Error("parser missed the AMI");
        }),
      );
      parseAndScan.push(
        await timed(async () => {
          const parser = new MachineReadableParser();
          for (let at = 0; at < text.length; at += 1 << 20) {
            const chunk = text.slice(at, at + (1 << 20));
            parser.push(chunk);
            if (containsCredential(chunk)) throw new Error("the generated log holds no credential");
          }
          parser.end();
        }),
      );
    }
    const grep: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      grep.push(
        await timed(async () => {
          const result = await execa("sh", ["-c", `grep 'artifact,0,id' ${shellQuote(logPath)} | cut -d, -f6`]);
          if (!result.stdout.includes(amiId)) throw new Error("grep missed the AMI");
        }),
      );
    }

    const mb = bytes / 1e6;
    const b = median(bare);
    const r = median(runner);
    const s = median(startup);
    const rows: Array<[string, string]> = [
      ["log", `${LINES.toLocaleString("en")} lines, ${mb.toFixed(1)} MB (median of ${RUNS} runs each)`],
      ["bare stand-in packer (writes the log)", `${b.toFixed(3)} s`],
      ["runner with stand-in packer", `${r.toFixed(3)} s`],
      ["node + tsx startup (runner --help)", `${s.toFixed(3)} s`],
      ["runner / bare, with startup", `${(r / b).toFixed(2)}x`],
      ["runner / bare, without startup", `${((r - s) / b).toFixed(2)}x  (goal <= 1.10x)`],
      ["driver `up` without the Pulumi CLI (exit 3)", `${median(driverNoCli).toFixed(3)} s (bare node + tsx ${median(bareNode).toFixed(3)} s)`],
      ["parser in-process", `${(mb / median(parseOnly)).toFixed(0)} MB/s (${median(parseOnly).toFixed(3)} s)`],
      ["parser + credential scan", `${(mb / median(parseAndScan)).toFixed(0)} MB/s (${median(parseAndScan).toFixed(3)} s)`],
      ["grep 'artifact,0,id' | cut -d, -f6", `${(mb / median(grep)).toFixed(0)} MB/s (${median(grep).toFixed(3)} s, incl. sh start)`],
    ];
    print(rows);
    process.stdout.write(`(log size check: ${statSync(logPath).size} bytes)\n`);
    print(benchInstallerHash());
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
