/**
 * `node --import tsx src/runner/redact-log.ts <log file>`: redacts AWS credentials and the known
 * secret values (the environment's AWS secrets, the secret variables named in
 * STAGE_RUNNER_SECRET_VARS) from a Packer log in place. The watchdog runs it when it, not the
 * runner, saw Packer to its end.
 */
import { redactFileInPlace, Redactor } from "./redact.ts";

const [logFile] = process.argv.slice(2);
if (!logFile) {
  process.stderr.write("usage: redact-log.ts <log file>\n");
  process.exit(2);
}
await redactFileInPlace(logFile, Redactor.forWatchdog(process.env));
