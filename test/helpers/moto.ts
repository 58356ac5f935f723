/**
 * moto's server (an emulated EC2 API, from scripts/test-tools/30-moto.sh) on a free loopback port,
 * for one suite: `const moto = useMoto()` at the top of a `describe` starts it before the suite and
 * stops it after, so no process outlives the tests.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EC2Client } from "@aws-sdk/client-ec2";
import { execa, type ResultPromise } from "execa";
import { realTool } from "./real-tools.ts";
import { tempDir } from "./temp-dir.ts";

// The SDK warns on Node < 22 with a stderr line; Node 20 is this project's floor (see deregister-cli.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** moto accepts any credentials; these only have to look like some. */
const CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export interface Moto {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** An EC2 client of the emulator for `region`. */
  ec2(region: string): EC2Client;
  /**
   * The environment that points the AWS SDKs at the emulator. AWS_ENDPOINT_URL matters for Packer
   * too: the amazon plugin (1.8.2) ignores `custom_endpoint_ec2` for the clients that copy an AMI
   * to the `ami_regions`, and those honour the SDK's endpoint variable.
   */
  env(): Record<string, string>;
  /**
   * The EC2 requests moto has received so far (its recorder), decoded: what a client asked for,
   * where moto does not model the answer (e.g. CopyImage's Encrypted).
   */
  requests(action: string): Promise<RecordedRequest[]>;
}

export interface RecordedRequest {
  region: string;
  params: Record<string, string>;
}

interface RecorderLine {
  headers: Record<string, string>;
  body?: string;
  body_encoded?: boolean;
}

function decodeRecord(line: RecorderLine): RecordedRequest {
  const body = line.body_encoded ? Buffer.from(line.body ?? "", "base64").toString("utf8") : (line.body ?? "");
  // Credential=<key>/<date>/<region>/<service>/aws4_request
  const region = /Credential=[^/]+\/\d+\/([^/]+)\//.exec(line.headers.Authorization ?? "")?.[1] ?? "";
  return { region, params: Object.fromEntries(new URLSearchParams(body)) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function waitUntilServing(endpoint: string, child: ResultPromise, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.finally(() => (exited = true)).catch(() => undefined);
  for (;;) {
    if (exited) throw new Error(`moto_server exited before serving on ${endpoint}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Starts moto before the surrounding suite and stops it after; read the endpoint in tests or hooks. */
export function useMoto(): Moto {
  let child: ResultPromise | undefined;
  let endpoint = "";
  const clients = new Map<string, EC2Client>();
  const killOnExit = () => child?.kill("SIGKILL");

  before(async function () {
    this.timeout(30_000);
    const bin = realTool("moto_server");
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    const recording = join(tempDir("moto-"), "requests.jsonl");
    child = execa(bin, ["-H", "127.0.0.1", "-p", String(port)], {
      env: { MOTO_ENABLE_RECORDING: "True", MOTO_RECORDER_FILEPATH: recording },
      reject: false,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      forceKillAfterDelay: 5_000,
    });
    process.once("exit", killOnExit);
    await waitUntilServing(endpoint, child, 20_000);
    const started = await fetch(`${endpoint}/moto-api/recorder/start-recording`, { method: "POST" });
    if (!started.ok) throw new Error(`moto's recorder did not start: HTTP ${started.status}`);
  });

  after(async function () {
    this.timeout(15_000);
    for (const client of clients.values()) client.destroy();
    clients.clear();
    if (child === undefined) return;
    child.kill("SIGTERM");
    await child;
    process.removeListener("exit", killOnExit);
    child = undefined;
  });

  return {
    get endpoint() {
      return endpoint;
    },
    ec2(region) {
      let client = clients.get(region);
      if (client === undefined) {
        client = new EC2Client({ region, endpoint, credentials: CREDENTIALS });
        clients.set(region, client);
      }
      return client;
    },
    env() {
      return {
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL: endpoint,
        AWS_EC2_METADATA_DISABLED: "true",
      };
    },
    async requests(action) {
      const response = await fetch(`${endpoint}/moto-api/recorder/download-recording`);
      if (!response.ok) throw new Error(`moto's recording: HTTP ${response.status}`);
      return (await response.text())
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => decodeRecord(JSON.parse(line) as RecorderLine))
        .filter((request) => request.params.Action === action);
    },
  };
}
