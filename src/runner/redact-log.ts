/**
 * `node --import tsx src/runner/redact-log.ts <log file>`: redacts AWS credentials from a Packer log
 * in place. The watchdog runs it when it, not the runner, saw Packer to its end.
 */
import { redactFileInPlace } from "./redact.ts";

const [logFile] = process.argv.slice(2);
if (!logFile) {
  process.stderr.write("usage: redact-log.ts <log file>\n");
  process.exit(2);
}
await redactFileInPlace(logFile);
