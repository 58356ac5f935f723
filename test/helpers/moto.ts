/**
 * moto's server (an emulated EC2 API, from scripts/test-tools/30-moto.sh) on a free loopback port,
 * for one suite: `const moto = useMoto()` at the top of a `describe` starts it before the suite and
 * stops it after, so no process outlives the tests.
 */
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { EC2Client } from "@aws-sdk/client-ec2";
import { execa, type ResultPromise } from "execa";
import { realTool } from "./real-tools.ts";

// The SDK warns on Node < 22 with a stderr line; Node 20 is this project's floor (see deregister-cli.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** moto accepts any credentials; these only have to look like some. */
const CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export interface Moto {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** An EC2 client of the emulator for `region`. */
  ec2(region: string): EC2Client;
  /** The environment that points the AWS SDKs (and the amazon plugin's credential chain) at the emulator. */
  env(): Record<string, string>;
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
    child = execa(bin, ["-H", "127.0.0.1", "-p", String(port)], {
      reject: false,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      forceKillAfterDelay: 5_000,
    });
    process.once("exit", killOnExit);
    await waitUntilServing(endpoint, child, 20_000);
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
  };
}
