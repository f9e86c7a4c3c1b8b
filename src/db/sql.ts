// SQL text that statements of several modules share.

/**
 * A timestamptz column as RFC 3339 text in UTC, to the microsecond (PostgreSQL's precision), the same in any
 * session's time zone. Formatted in SQL because a driver's Date would drop the microseconds. The colons are quoted
 * text of the format: a bare ":MI" would read as a variable to pgbench, which runs the books' statements in the
 * benchmark (bench/pgbench.ts).
 */
export const rfc3339Utc = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.US"Z"')`
