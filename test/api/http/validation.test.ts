import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { type TSchema, Type } from 'typebox'
import { BookInput, BookParams, ListQuery } from '../../../src/books/schemas.ts'
import { fieldErrors, validatorCompiler } from '../../../src/http/pipeline/validation.ts'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'

type Validate = ((value: unknown) => boolean) & { errors?: unknown[] | null }

function compile(schema: TSchema, httpPart: 'body' | 'querystring' | 'params'): Validate {
  return validatorCompiler({ schema, httpPart, method: 'POST', url: '/' }) as Validate
}

const validBook = { title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' }

function bookErrors(input: unknown) {
  const validate = compile(BookInput, 'body')
  assert.equal(validate(input), false, 'expected the input to be rejected')
  return fieldErrors(validate.errors as never, 'body')
}

function queryErrors(query: Record<string, string>) {
  const validate = compile(ListQuery, 'querystring')
  assert.equal(validate({ ...query }), false, 'expected the query to be rejected')
  return fieldErrors(validate.errors as never, 'query')
}

describe('book input validation', () => {
  it('when the input is valid, then it passes and the status default is filled in', () => {
    const validate = compile(BookInput, 'body')
    const input = { ...validBook }
    assert.equal(validate(input), true)
    assert.deepEqual(input, { ...validBook, status: 'pending' })
  })

  it('when optional fields are null, then they pass', () => {
    assert.equal(compile(BookInput, 'body')({ ...validBook, image_url: null, description: null }), true)
  })

  const cases: [string, Record<string, unknown>, Record<string, string>][] = [
    ['title missing', { author: 'A', published_date: '2000-01-01' }, { title: 'This field is required' }],
    ['title empty', { ...validBook, title: '' }, { title: 'Must not be empty' }],
    ['title too long', { ...validBook, title: 't'.repeat(256) }, { title: 'Must be at most 255 characters' }],
    ['title not a string', { ...validBook, title: 7 }, { title: 'Must be a string' }],
    [
      'author with digits',
      { ...validBook, author: 'R2D2' },
      {
        author: 'Must contain only letters, spaces, dots, apostrophes and hyphens',
      },
    ],
    [
      'author starting with a dot',
      { ...validBook, author: '.Anon' },
      {
        author: 'Must contain only letters, spaces, dots, apostrophes and hyphens',
      },
    ],
    ['date not real', { ...validBook, published_date: '2023-02-30' }, { published_date: 'Must be a valid date' }],
    [
      'date with time',
      { ...validBook, published_date: '2023-02-01T00:00:00Z' },
      {
        published_date: 'Must be a valid date',
      },
    ],
    ['status unknown', { ...validBook, status: 'lost' }, { status: 'Must be one of pending, verified' }],
    [
      'image_url not http',
      { ...validBook, image_url: 'mailto:a@b.c' },
      {
        image_url: 'Must be a valid URL',
      },
    ],
    ['image_url a number', { ...validBook, image_url: 5 }, { image_url: 'Must be a string or null' }],
    [
      'description too long',
      { ...validBook, description: 'd'.repeat(5001) },
      {
        description: 'Must be at most 5000 characters',
      },
    ],
    ['unknown member', { ...validBook, rating: 5 }, { rating: 'Unknown field' }],
  ]
  for (const [name, input, expected] of cases) {
    it(`when ${name}, then the message is "${Object.values(expected)[0]}"`, () => {
      assert.deepEqual(bookErrors(input), expected)
    })
  }

  it('when one field breaks several rules, then only its first failure is reported', () => {
    assert.deepEqual(bookErrors({ ...validBook, author: `${'9'.repeat(300)}` }), {
      author: 'Must be at most 255 characters',
    })
  })

  it('when the body is not an object, then the message is under "body"', () => {
    assert.deepEqual(bookErrors(null), { body: 'Must be a JSON object' })
    assert.deepEqual(bookErrors(42), { body: 'Must be a JSON object' })
  })

  it('when a JSON number is sent for a string, then it is not coerced', () => {
    assert.deepEqual(bookErrors({ ...validBook, published_date: 20000101 }), {
      published_date: 'Must be a string',
    })
  })
})

describe('list query validation', () => {
  it('when nothing is given, then the defaults are filled in', () => {
    const query = {}
    assert.equal(compile(ListQuery, 'querystring')(query), true)
    assert.deepEqual(query, { page: 1, pageSize: 10, sort: '-created_at' })
  })

  it('when numbers arrive as text, then they are coerced', () => {
    const query = { page: '3', pageSize: '25' }
    assert.equal(compile(ListQuery, 'querystring')(query), true)
    assert.deepEqual(query, { page: 3, pageSize: 25, sort: '-created_at' })
  })

  it('when several parameters are wrong, then each is named', () => {
    assert.deepEqual(queryErrors({ page: '0', pageSize: '500', sort: 'price' }), {
      page: 'Must be an integer between 1 and 1000000',
      pageSize: 'Must be an integer between 1 and 100',
      sort: 'Must be one of created_at, -created_at, published_date, -published_date, title, -title',
    })
  })

  it('when q or author is longer than 255 characters, then 422 gives the limit', () => {
    assert.deepEqual(queryErrors({ q: 'q'.repeat(256), author: 'a'.repeat(256) }), {
      q: 'Must be at most 255 characters',
      author: 'Must be at most 255 characters',
    })
  })
})

describe('fieldErrors', () => {
  it('when errors are nested, then the field is a dotted path', () => {
    assert.deepEqual(
      fieldErrors(
        [
          { instancePath: '/a', keyword: 'required', params: { missingProperty: 'b' }, schemaPath: '', message: '' },
          { instancePath: '/a/c', keyword: 'maxLength', params: { limit: 3 }, schemaPath: '', message: '' },
        ],
        'body',
      ),
      { 'a.b': 'This field is required', 'a.c': 'Must be at most 3 characters' },
    )
  })
})

describe('what the schemas accept, the columns take', () => {
  const accepts = (input: Record<string, unknown>) => compile(BookInput, 'body')({ ...validBook, ...input })

  for (const published_date of ['0001-01-01', '9999-12-31', '2000-02-29', '1600-02-29']) {
    it(`when the date is ${published_date}, then it passes`, () => assert.equal(accepts({ published_date }), true))
  }
  for (const published_date of ['0000-01-01', '0000-02-29', '1900-02-29', '10000-01-01', '-0001-01-01', '1-01-01']) {
    it(`when the date is ${published_date}, then the message is "Must be a valid date"`, () => {
      assert.deepEqual(bookErrors({ ...validBook, published_date }), { published_date: 'Must be a valid date' })
    })
  }

  for (const image_url of [
    'http://a',
    'HTTPS://Covers.Example.ORG/x.jpg',
    'http://127.0.0.1:8080/x?y=1#z',
    'http://[::1]/x',
    'https://[2001:db8::7]:443/',
    'http://user:pw@host.example/',
    'http://host.example:/',
  ]) {
    it(`when image_url is ${image_url}, then it passes`, () => assert.equal(accepts({ image_url }), true))
  }
  for (const image_url of [
    'http://',
    'https://',
    'http:///path',
    'http://?q',
    'http://#f',
    'http://:80',
    'http://u@',
  ]) {
    it(`when image_url is ${image_url} (no host), then the message is the URL rule`, () => {
      assert.deepEqual(bookErrors({ ...validBook, image_url }), { image_url: 'Must be a valid URL' })
    })
  }

  it('when the id is canonical in either case, then it passes; any other form is "Must be a UUID"', () => {
    const validate = compile(BookParams, 'params')
    assert.equal(validate({ id: '0190a0b0-0000-7000-8000-00000000000a' }), true)
    assert.equal(validate({ id: '0190A0B0-0000-7000-8000-00000000000A' }), true)
    for (const id of [
      'urn:uuid:0190a0b0-0000-7000-8000-00000000000a',
      'URN:UUID:0190a0b0-0000-7000-8000-00000000000a',
      '{0190a0b0-0000-7000-8000-00000000000a}',
      '0190a0b000007000800000000000000a',
      '0190a0b0-0000-7000-8000-00000000000a ',
    ]) {
      assert.equal(validate({ id }), false, id)
      assert.deepEqual(fieldErrors(validate.errors as never, 'params'), { id: 'Must be a UUID' }, id)
    }
  })

  for (const value of ['Infinity', '-Infinity', '1e999', '-1e999', `1${'0'.repeat(400)}`]) {
    it(`when page and pageSize are ${value.slice(0, 12)}, then each gets its range message`, () => {
      assert.deepEqual(queryErrors({ page: value, pageSize: value }), {
        page: 'Must be an integer between 1 and 1000000',
        pageSize: 'Must be an integer between 1 and 100',
      })
    })
  }

  it('when a query or path schema has a number without both bounds, then compiling it fails', () => {
    assert.throws(
      () => compile(Type.Object({ limit: Type.Integer({ minimum: 1 }) }), 'querystring'),
      /limit is a number without a minimum and a maximum/,
    )
    assert.equal(compile(Type.Object({ limit: Type.Integer() }), 'body')({ limit: 1 }), true)
  })
})

describe('error maps and the names of Object.prototype', () => {
  const names = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__']

  it('when unknown members carry the names of built-ins, then each is named in the map as an own field', () => {
    // JSON.parse makes "__proto__" an own member, as the body parser would if it let one through.
    const input = JSON.parse(
      JSON.stringify(validBook).replace('{', `{${names.map((name) => `"${name}": 1`).join(', ')}, `),
    )
    const errors = bookErrors(input)
    assert.deepEqual(Object.keys(errors).sort(), [...names].sort())
    for (const name of names) assert.ok(Object.hasOwn(errors, name), name)
    assert.match(JSON.stringify(errors), /"__proto__":"Unknown field"/)
    assert.equal(Object.getPrototypeOf(errors), Object.prototype)
  })

  describe('over HTTP', () => {
    let service: TestService
    before(async () => {
      service = await startService('embedded')
    })
    after(() => service?.close())

    it('when a body has members named constructor, toString, hasOwnProperty, valueOf, then 422 names each', async () => {
      const members = names.filter((name) => name !== '__proto__')
      const body = { ...validBook, ...Object.fromEntries(members.map((name) => [name, 1])) }
      const response = await service.fetch('/v1/books', jsonRequest('POST', body))
      assert.equal(response.status, 422)
      assert.deepEqual(
        (await bodyOf(response)).errors,
        Object.fromEntries(members.map((name) => [name, 'Unknown field'])),
      )
    })

    it('when a body has a __proto__ member, then the JSON parser refuses it with 400 before validation', async () => {
      const response = await service.fetch(
        '/v1/books',
        jsonRequest('POST', JSON.stringify(validBook).replace('{', '{"__proto__": {"admin": true}, ')),
      )
      assert.equal(response.status, 400)
      assert.equal((await bodyOf(response)).detail, 'request body is not valid JSON')
    })
  })
})
