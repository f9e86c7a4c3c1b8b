// A second resource, for tests only: widgets, built as src/books is, on the contract in src/resource.ts and nothing
// else. Its operations are declared once; its REST routes and its RPC service (test.widgets.v1.WidgetService, a
// descriptor made here rather than generated from a .proto) both serve them; its create records an event in the
// outbox; a job counts its rows. The test registers it beside the books without changing a shared layer.
import { create, createFileRegistry, type DescMessage, type DescService } from '@bufbuild/protobuf'
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt'
import { Code, ConnectError } from '@connectrpc/connect'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { declareEvents } from '../../src/events/cloudevents.ts'
import { eventParameters, withEvent } from '../../src/events/outbox.ts'
import { declareOperations, PUBLIC, requiresScope } from '../../src/http/toolkit/operation.ts'
import { HttpError } from '../../src/http/toolkit/problem.ts'
import { jsonResponse, problemDocs } from '../../src/http/toolkit/responses.ts'
import type { Resource } from '../../src/resource.ts'
import type { RpcResource } from '../../src/rpc/toolkit/resource.ts'

/** The table the resource keeps; a real resource adds it with a migration. */
export const WIDGETS_TABLE = `CREATE TABLE IF NOT EXISTS widgets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  version integer NOT NULL DEFAULT 1
)`

// One operation of each kind: a read and a write that need a scope, and a public read.
export const WIDGET_OPERATIONS = declareOperations({
  getWidget: { summary: 'Read a widget', access: requiresScope('widgets:read'), effect: 'read' },
  createWidget: { summary: 'Create a widget', access: requiresScope('widgets:write'), effect: 'write' },
  countWidgets: { summary: 'Count the widgets', access: PUBLIC, effect: 'read' },
})

export const Widget = Type.Object(
  { id: Type.String({ format: 'uuid' }), name: Type.String({ minLength: 1, maxLength: 50 }) },
  { title: 'Widget', additionalProperties: false },
)
const WidgetInput = Type.Object({ name: Type.String({ minLength: 1, maxLength: 50 }) }, { additionalProperties: false })

export const WIDGET_EVENTS = declareEvents({
  aggregate: 'widget',
  source: '//myapp/widgets',
  versionAttribute: 'widgetversion',
  stream: { name: 'WIDGETS', subjectPrefix: 'widgets' },
  read: WIDGET_OPERATIONS.getWidget.access,
  changes: {
    created: {
      type: 'dev.myapp.widget.created.v1',
      data: Widget,
      title: 'WidgetCreatedEvent',
      description: 'A widget was created',
    },
  },
})

const INSERT = withEvent(
  'INSERT INTO widgets (name) VALUES ($1) RETURNING id, name, version',
  {
    aggregate: WIDGET_EVENTS.aggregate,
    type: WIDGET_EVENTS.changes.created.type,
    id: 'id',
    version: 'version',
    data: "jsonb_build_object('id', id, 'name', name)",
  },
  { select: 'id, name', eventId: '$2', traceparent: '$3' },
)

/** test.widgets.v1: a service with a method per operation, as protoc would describe it. */
function widgetDescriptors(): { service: DescService; widget: DescMessage; count: DescMessage } {
  const string = (name: string, number: number) => ({ name, number, type: 9, label: 1, jsonName: name })
  const file = create(FileDescriptorProtoSchema, {
    name: 'test/widgets/v1/widgets.proto',
    package: 'test.widgets.v1',
    syntax: 'proto3',
    messageType: [
      { name: 'GetWidgetRequest', field: [string('id', 1)] },
      { name: 'CreateWidgetRequest', field: [string('name', 1)] },
      { name: 'CountWidgetsRequest' },
      { name: 'Widget', field: [string('id', 1), string('name', 2)] },
      { name: 'WidgetCount', field: [{ name: 'count', number: 1, type: 5, label: 1, jsonName: 'count' }] },
    ],
    service: [
      {
        name: 'WidgetService',
        method: [
          { name: 'GetWidget', inputType: '.test.widgets.v1.GetWidgetRequest', outputType: '.test.widgets.v1.Widget' },
          {
            name: 'CreateWidget',
            inputType: '.test.widgets.v1.CreateWidgetRequest',
            outputType: '.test.widgets.v1.Widget',
          },
          {
            name: 'CountWidgets',
            inputType: '.test.widgets.v1.CountWidgetsRequest',
            outputType: '.test.widgets.v1.WidgetCount',
          },
        ],
      },
    ],
  })
  const registry = createFileRegistry(file, () => undefined)
  return {
    service: registry.getService('test.widgets.v1.WidgetService') as DescService,
    widget: registry.getMessage('test.widgets.v1.Widget') as DescMessage,
    count: registry.getMessage('test.widgets.v1.WidgetCount') as DescMessage,
  }
}
export const WIDGET_RPC = widgetDescriptors()

export const widgetsResource: Resource = {
  name: 'widgets',
  operations: WIDGET_OPERATIONS,
  events: WIDGET_EVENTS,
  build({ database }) {
    const find = async (id: string) =>
      (await database.query<{ id: string; name: string }>('SELECT id, name FROM widgets WHERE id = $1', [id]))[0]
    const insert = async (name: string) => {
      const { eventId, traceparent } = eventParameters()
      const [row] = await database.query<{ id: string; name: string }>(INSERT, [name, eventId, traceparent])
      return row as { id: string; name: string }
    }
    const count = async () =>
      (await database.query<{ count: number }>('SELECT count(*)::int AS count FROM widgets'))[0]?.count ?? 0
    const problems = problemDocs({ instance: '/v1/widgets' })

    const routes: FastifyPluginAsyncTypebox = async (app) => {
      app.get(
        '/:id',
        {
          config: { operation: WIDGET_OPERATIONS.getWidget },
          schema: {
            tags: ['widgets'],
            params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
            response: { 200: jsonResponse(Widget, 'The widget'), ...problems(401, 403, 404, 429) },
          },
        },
        async (request) => {
          const widget = await find(request.params.id)
          if (widget === undefined) throw new HttpError(404, 'widget not found')
          return widget
        },
      )
      app.post(
        '/',
        {
          config: { operation: WIDGET_OPERATIONS.createWidget },
          schema: {
            tags: ['widgets'],
            body: WidgetInput,
            response: { 201: jsonResponse(Widget, 'The widget'), ...problems(401, 403, 422, 429) },
          },
        },
        async (request, reply) => reply.code(201).send(await insert(request.body.name)),
      )
      app.get(
        '/count',
        {
          config: { operation: WIDGET_OPERATIONS.countWidgets },
          schema: {
            tags: ['widgets'],
            response: { 200: jsonResponse(Type.Object({ count: Type.Integer() }), 'How many'), ...problems(429) },
          },
        },
        async () => ({ count: await count() }),
      )
    }

    const rpc: RpcResource = {
      service: WIDGET_RPC.service,
      impl: {
        async getWidget(request: { id: string }) {
          const widget = await find(request.id)
          if (widget === undefined) throw new ConnectError('widget not found', Code.NotFound)
          return create(WIDGET_RPC.widget, widget)
        },
        async createWidget(request: { name: string }) {
          return create(WIDGET_RPC.widget, await insert(request.name))
        },
        async countWidgets() {
          return create(WIDGET_RPC.count, { count: await count() })
        },
      } as never,
      operations: {
        getWidget: WIDGET_OPERATIONS.getWidget,
        createWidget: WIDGET_OPERATIONS.createWidget,
        countWidgets: WIDGET_OPERATIONS.countWidgets,
      },
    }

    return {
      http: {
        prefix: '/v1/widgets',
        routes,
        tags: [{ name: 'widgets', description: 'Test widgets' }],
        components: [Widget],
      },
      rpc: [rpc],
      jobs: [
        {
          name: 'widget-census',
          everyMs: 60_000,
          counts: 'widgets counted',
          run: async (tx) =>
            (await tx.query<{ count: number }>('SELECT count(*)::int AS count FROM widgets'))[0]?.count ?? 0,
        },
      ],
    }
  },
}
