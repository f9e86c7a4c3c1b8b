// EXPLAIN (ANALYZE, BUFFERS) of a list statement as the service runs it: prepared (the service's driver names its
// statements), executed often enough that PostgreSQL has chosen between a custom and a generic plan, and with the
// values the service sent. Also runs a statement plainly, so that the harness can check it returns the rows the
// service answered with.
import { writeFileSync } from 'node:fs'
import postgres from 'postgres'

export interface Statement {
  text: string
  values: unknown[]
}

export interface PlanSummary {
  /** The plan's top nodes, down to the first node with more than one child, e.g. "Limit → Index Scan Backward". */
  nodes: string
  indexes: string[]
  sharedHitBlocks: number
  sharedReadBlocks: number
  /** Rows that a filter read and threw away, over all nodes. */
  rowsRemovedByFilter: number
  executionMs: number
  planningMs: number
  /** Whether PostgreSQL chose the generic plan of the prepared statement (the same plan for any values). */
  generic: boolean
  /** The full plan, as text. */
  file: string
}

interface PlanNode {
  'Node Type': string
  'Scan Direction'?: string
  'Index Name'?: string
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  'Rows Removed by Filter'?: number
  Plans?: PlanNode[]
}

/** Executions before the one explained: PostgreSQL weighs a generic plan from the sixth execution on. */
const EXECUTIONS_BEFORE = 5

const literal = (value: unknown) =>
  value === null || value === undefined
    ? 'NULL'
    : typeof value === 'number'
      ? String(value)
      : `'${String(value).replaceAll("'", "''")}'`

export function connectForPlans(databaseUrl: string) {
  // One connection: a prepared statement belongs to its session.
  const sql = postgres(databaseUrl, { max: 1, prepare: false, onnotice: () => {} })
  let prepared = 0
  return {
    /** The statement's rows, run as the driver runs it (parameters bound, not spliced). */
    rows: (statement: Statement) => sql.unsafe(statement.text, statement.values as never[]),

    /** Explains the statement's steady-state plan and writes it in full to `file`. */
    async explain(statement: Statement, file: string): Promise<PlanSummary> {
      const name = `bench_plan_${++prepared}`
      const execute =
        statement.values.length === 0
          ? `EXECUTE ${name}`
          : `EXECUTE ${name}(${statement.values.map(literal).join(', ')})`
      await sql.unsafe(`PREPARE ${name} AS ${statement.text}`)
      try {
        for (let i = 0; i < EXECUTIONS_BEFORE; i++) await sql.unsafe(execute)
        const counters = async () => {
          const [row] = await sql<{ generic: string }[]>`
            SELECT generic_plans AS generic FROM pg_prepared_statements WHERE name = ${name}`
          return Number(row?.generic ?? 0)
        }
        const genericBefore = await counters()
        const [json] = await sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${execute}`)
        const generic = (await counters()) > genericBefore
        const text = await sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${execute}`)
        const raw = json?.['QUERY PLAN'] as unknown
        const [explained] = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [
          { Plan: PlanNode; 'Execution Time': number; 'Planning Time': number },
        ]
        writeFileSync(
          file,
          [
            `-- ${generic ? 'generic' : 'custom'} plan of the prepared statement, after ${EXECUTIONS_BEFORE} executions`,
            `-- values: ${statement.values.map(literal).join(', ')}`,
            statement.text.replace(/\s+/g, ' ').trim(),
            '',
            ...text.map((row) => String(row['QUERY PLAN'])),
            '',
          ].join('\n'),
        )
        return summarise(explained.Plan, {
          executionMs: explained['Execution Time'],
          planningMs: explained['Planning Time'],
          generic,
          file,
        })
      } finally {
        await sql.unsafe(`DEALLOCATE ${name}`)
      }
    },

    close: () => sql.end({ timeout: 5 }),
  }
}

function summarise(
  top: PlanNode,
  facts: { executionMs: number; planningMs: number; generic: boolean; file: string },
): PlanSummary {
  const chain: string[] = []
  for (
    let node: PlanNode | undefined = top;
    node !== undefined;
    node = node.Plans?.length === 1 ? node.Plans[0] : undefined
  ) {
    chain.push(node['Scan Direction'] === 'Backward' ? `${node['Node Type']} Backward` : node['Node Type'])
  }
  const indexes = new Set<string>()
  let rowsRemovedByFilter = 0
  const visit = (node: PlanNode) => {
    if (node['Index Name'] !== undefined) indexes.add(node['Index Name'])
    rowsRemovedByFilter += node['Rows Removed by Filter'] ?? 0
    for (const child of node.Plans ?? []) visit(child)
  }
  visit(top)
  return {
    nodes: chain.join(' → '),
    indexes: [...indexes],
    sharedHitBlocks: top['Shared Hit Blocks'] ?? 0,
    sharedReadBlocks: top['Shared Read Blocks'] ?? 0,
    rowsRemovedByFilter,
    executionMs: Number(facts.executionMs.toFixed(3)),
    planningMs: Number(facts.planningMs.toFixed(3)),
    generic: facts.generic,
    file: facts.file,
  }
}
