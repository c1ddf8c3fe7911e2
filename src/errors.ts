// Domain errors. Every failure a user can cause is one of these; src/http maps `code` to a
// status and the `{error: {code, message, details}}` envelope in one place.

export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "too_large"
  | "unprocessable"
  | "rate_limited"
  | "unavailable";

/** The HTTP status of each code, for the API's and the dashboard's error answers. */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  // Not in the first list of codes: added for a known path asked with a method it does not
  // serve (docs/api.md, "Errors"), answered with an `Allow` header.
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
} as const satisfies Record<ErrorCode, number>;

export class AppError extends Error {
  override readonly name: string = "AppError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class NotFoundError extends AppError {
  override readonly name = "NotFoundError";
  constructor(what: string, key: string) {
    super("not_found", `${what} '${key}' not found`);
  }
}

export class ConflictError extends AppError {
  override readonly name = "ConflictError";
  constructor(message: string) {
    super("conflict", message);
  }
}

export class InvalidRequestError extends AppError {
  override readonly name = "InvalidRequestError";
  constructor(message: string, details?: unknown) {
    super("invalid_request", message, details);
  }
}
