// The /docs page in a real headless Chromium, with every address but the service's blocked.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { after, before, it } from 'node:test'
import { type Browser, chromium } from 'playwright-core'
import { describe } from '../../helpers/describe.ts'
import { REQUIRE_SERVICES } from '../../helpers/postgres-server.ts'
import { bodyOf, startService, type TestService } from '../../helpers/service.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = new URL('../../../test-results/', import.meta.url)

function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false
  const reason = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`
  if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
  return reason
}

describe('the docs page in a browser', { skip: chromiumMissing() }, () => {
  let service: TestService
  let browser: Browser
  before(async () => {
    service = await startService('embedded')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
  })
  after(async () => {
    await browser?.close()
    await service?.close()
  })

  it('when "Create book" is executed from /docs with only 127.0.0.1 reachable, then the page shows 201', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1600 } })
    const blocked: string[] = []
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url())
      if (url.hostname === '127.0.0.1') return route.continue()
      blocked.push(url.href)
      return route.abort('internetdisconnected')
    })
    const page = await context.newPage()
    await page.goto(`${service.baseUrl}/docs/`)

    const operation = page.locator('#operations-books-createBook')
    await operation.waitFor({ timeout: 15_000 })
    for (const id of ['listBooks', 'getBook', 'replaceBook', 'deleteBook']) {
      assert.equal(await page.locator(`#operations-books-${id}`).count(), 1, `${id} is on the page`)
    }
    await operation.locator('.opblock-summary').click()
    const body = operation.locator('textarea.body-param__text')
    await body.fill(JSON.stringify({ title: 'Ficciones', author: 'Jorge Luis Borges', published_date: '1944-01-01' }))
    await operation.locator('button.execute').click()
    const status = operation.locator('.live-responses-table .response .response-col_status').first()
    await status.waitFor({ timeout: 15_000 })
    assert.equal((await status.innerText()).trim(), '201')

    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: new URL('docs-create-book.png', ARTIFACTS).pathname, fullPage: false })
    await context.close()

    assert.deepEqual(blocked, [], 'the page needs nothing beyond the service')
    const list = await service.fetch('/v1/books?author=jorge%20luis%20borges')
    assert.equal((await bodyOf(list))[0]?.title, 'Ficciones')
  })
})
