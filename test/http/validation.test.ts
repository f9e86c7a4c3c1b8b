import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { TSchema } from 'typebox'
import { BookInput, ListQuery } from '../../src/books/schemas.ts'
import { fieldErrors, validatorCompiler } from '../../src/http/validation.ts'
import { describe } from '../helpers/describe.ts'

type Validate = ((value: unknown) => boolean) & { errors?: unknown[] | null }

function compile(schema: TSchema, httpPart: 'body' | 'querystring'): Validate {
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
    ['status unknown', { ...validBook, status: 'lost' }, { status: 'Must be one of: pending, verified' }],
    [
      'image_url not http',
      { ...validBook, image_url: 'mailto:a@b.c' },
      {
        image_url: 'Must be an absolute http or https URL',
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
      sort: 'Must be one of: created_at, -created_at, published_date, -published_date, title, -title',
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
