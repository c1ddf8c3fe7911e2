// Domain errors. Every failure a user can cause is one of these; src/http maps `code` to a
// status and the `{error: {code, message, details}}` envelope in one place.

export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unprocessable"
  | "unavailable";

/** The HTTP status of each code, for the API's and the dashboard's error answers. */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unprocessable: 422,
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
