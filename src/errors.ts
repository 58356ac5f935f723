/**
 * Every error this project raises on purpose carries a stable prefix (`<code>: `) so that users,
 * scripts and tests can match on it without depending on the rest of the wording.
 */
export class JiraImagesError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = "JiraImagesError";
    this.code = code;
  }
}
