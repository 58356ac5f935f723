/** Where the driver writes. stdout is for machine-readable results only (`outputs`). */
export interface DriverIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (colour for the Pulumi CLI's own output). */
  stderrIsTTY: boolean;
}

export function processIo(): DriverIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
  };
}
