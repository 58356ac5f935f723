import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A stand-in instance metadata service on loopback, and the requests it saw. */
export interface ImdsStandIn {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/**
 * Answers like IMDS with IMDSv2 required: a session token only for PUT /latest/api/token with a
 * TTL header, metadata (`latest/meta-data/<path>` from `metadata`) only with that token, 401 without.
 */
export async function startImds(metadata: Record<string, string>): Promise<ImdsStandIn> {
  const requests: string[] = [];
  const token = "token-123";
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.method === "PUT" && req.url === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) {
      res.end(token);
      return;
    }
    if (req.method !== "GET" || req.headers["x-aws-ec2-metadata-token"] !== token) {
      res.writeHead(401).end();
      return;
    }
    const value = metadata[(req.url ?? "").replace(/^\/latest\/meta-data\//, "")];
    if (value === undefined) res.writeHead(404).end();
    else res.end(value);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
