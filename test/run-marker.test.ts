/**
 * The runner's run id and live-run marker: what ties a build's AWS resources (tag
 * `jira-images:run-id`) to a runner, so that `sweep` never removes what a live build uses.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { spawnSync } from "node:child_process";
import { RUN_ID, liveRunIds, markerPath, newRunId, runIdStart } from "../src/runner/run-marker.ts";
import { RUN_ID_VARIABLE, makeTemplate, readRecord, runInProcess as run, tempDir, waitFor } from "./fixtures/fake-packer-harness.ts";

describe("run id and live-run marker", function () {
  this.timeout(30_000);

  it("a run id carries the runner's start time to the second", () => {
    const id = newRunId(new Date("2026-12-04T19:08:04.512Z"));
    assert.match(id, RUN_ID);
    assert.match(id, /^20261204T190804Z-[0-9a-f]{8}$/);
    assert.equal(runIdStart(id)?.toISOString(), "2026-12-04T19:08:04.000Z");
    assert.notEqual(newRunId(new Date()), newRunId(new Date()));
    for (const bad of ["manual", "", "20261304T190804Z-1a2b3c4d", "20261204T190804Z-1A2B3C4D", "x20261204T190804Z-1a2b3c4d"]) {
      assert.equal(runIdStart(bad), undefined, bad);
    }
  });

  it("the runner passes its run id as run_id (overriding a --var run_id), names the log after it and returns it", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const o = await run(
      ["--stage", "base", "--template", makeTemplate(dir, { extra: RUN_ID_VARIABLE }), "--var", "run_id=mine", "--log-dir", join(dir, "logs")],
      { FAKE_PACKER_RECORD: record },
    );
    assert.ok(o.result, o.error);
    assert.match(o.result.runId ?? "", RUN_ID);
    assert.equal(basename(o.result.logFile), `${o.result.runId}.log`);
    const argv = readRecord(record).find((e) => e.event === "start")!["argv"] as string[];
    assert.deepEqual(argv.filter((a) => a.startsWith("run_id=")), [`run_id=${o.result.runId}`]);
    assert.deepEqual(readdirSync(join(dir, "logs")), [`${o.result.runId}.log`], "no marker left after the run");
  });

  it("passes no run_id to a template that does not declare it (Packer would refuse an undeclared -var)", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const o = await run(["--stage", "base", "--template", makeTemplate(dir), "--log-dir", join(dir, "logs")], { FAKE_PACKER_RECORD: record });
    assert.ok(o.result, o.error);
    const argv = readRecord(record).find((e) => e.event === "start")!["argv"] as string[];
    assert.equal(argv.some((a) => a.startsWith("run_id=")), false);
  });

  it("keeps a marker while the build runs (live for sweep), and removes it when the build ends, failed or not", async () => {
    const dir = tempDir();
    const record = join(dir, "record");
    const logs = join(dir, ".packer-logs", "jira");
    const running = run(["--stage", "jira", "--template", makeTemplate(dir, { extra: RUN_ID_VARIABLE }), "--log-dir", logs, "--timeout", "1.5"], {
      FAKE_PACKER_HANG: "1",
      FAKE_PACKER_RECORD: record,
    });
    await waitFor("packer build to start", () => readRecord(record).some((e) => e.event === "start"));
    const runId = (readRecord(record).find((e) => e.event === "start")!["argv"] as string[]).find((a) => a.startsWith("run_id="))!.slice(7);
    assert.ok(existsSync(markerPath(logs, runId)));
    assert.deepEqual([...liveRunIds(join(dir, ".packer-logs"))], [runId]);
    const o = await running;
    assert.match(o.error ?? "", /^TIMEOUT: /);
    assert.equal(existsSync(markerPath(logs, runId)), false);
    assert.deepEqual([...liveRunIds(join(dir, ".packer-logs"))], []);
  });

  it("a marker whose processes are gone is dead; an unreadable one counts as live", () => {
    const root = tempDir();
    mkdirSync(join(root, "base"));
    const exited = spawnSync("true").pid;
    const dead = "20261204T190804Z-00000001";
    const garbled = "20261204T190804Z-00000002";
    const mine = "20261204T190804Z-00000003";
    writeFileSync(markerPath(join(root, "base"), dead), JSON.stringify({ runId: dead, stage: "base", startedAt: "x", runner: { pid: exited } }));
    writeFileSync(markerPath(join(root, "base"), garbled), "{ half a marker");
    writeFileSync(markerPath(join(root, "base"), mine), JSON.stringify({ runId: mine, stage: "base", startedAt: "x", runner: { pid: process.pid } }));
    writeFileSync(join(root, "base", `${dead}.log`), "a log is not a marker\n");
    assert.deepEqual([...liveRunIds(root)].sort(), [garbled, mine]);
    assert.deepEqual([...liveRunIds(join(root, "nowhere"))], []);
  });

  it("a reused pid is not the run's process (its start time differs)", () => {
    const root = tempDir();
    mkdirSync(join(root, "base"));
    const id = "20261204T190804Z-00000004";
    writeFileSync(markerPath(join(root, "base"), id), JSON.stringify({ runId: id, stage: "base", startedAt: "x", runner: { pid: process.pid, startTicks: "1" } }));
    assert.deepEqual([...liveRunIds(root)], []);
  });
});
