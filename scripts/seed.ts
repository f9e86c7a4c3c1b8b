// Fills the configured database with a few dozen real books: npm run seed
import { createBooksRepository } from '../src/books/repository.ts'
import type { BookInput } from '../src/books/schemas.ts'
import { loadConfigOrExit } from '../src/config/load.ts'
import { EmbeddedFolderError } from '../src/db/errors.ts'
import { createMigrator } from '../src/db/migrator.ts'
import { openDatabase } from '../src/db/open.ts'
import { createLogger } from '../src/logger.ts'

const BOOKS: [title: string, author: string, published: string][] = [
  ['The Hobbit', 'J. R. R. Tolkien', '1937-09-21'],
  ['The Fellowship of the Ring', 'J. R. R. Tolkien', '1954-07-29'],
  ['One Hundred Years of Solitude', 'Gabriel García Márquez', '1967-05-30'],
  ['Love in the Time of Cholera', 'Gabriel García Márquez', '1985-09-05'],
  ['Nineteen Eighty-Four', 'George Orwell', '1949-06-08'],
  ['Animal Farm', 'George Orwell', '1945-08-17'],
  ['Pride and Prejudice', 'Jane Austen', '1813-01-28'],
  ['Emma', 'Jane Austen', '1815-12-23'],
  ['Things Fall Apart', 'Chinua Achebe', '1958-06-17'],
  ['Beloved', 'Toni Morrison', '1987-09-02'],
  ['The Left Hand of Darkness', 'Ursula K. Le Guin', '1969-03-01'],
  ['A Wizard of Earthsea', 'Ursula K. Le Guin', '1968-11-01'],
  ['Norwegian Wood', '村上 春樹', '1987-09-04'],
  ['Kafka on the Shore', '村上 春樹', '2002-09-12'],
  ['The Master and Margarita', 'Михаил Булгаков', '1967-11-01'],
  ['Crime and Punishment', 'Фёдор Достоевский', '1866-01-01'],
  ['The Name of the Rose', 'Umberto Eco', '1980-09-01'],
  ['If on a winter’s night a traveler', 'Italo Calvino', '1979-06-01'],
  ['Ficciones', 'Jorge Luis Borges', '1944-01-01'],
  ['The Tale of Kieu', 'Nguyễn Du', '1820-01-01'],
  ['Midnight’s Children', 'Salman Rushdie', '1981-04-01'],
  ['The God of Small Things', 'Arundhati Roy', '1997-04-04'],
  ['Dune', 'Frank Herbert', '1965-08-01'],
  ['Foundation', 'Isaac Asimov', '1951-06-01'],
  ['The Dispossessed', 'Ursula K. Le Guin', '1974-05-01'],
  ['Neuromancer', 'William Gibson', '1984-07-01'],
  ['Snow Crash', 'Neal Stephenson', '1992-06-01'],
  ['The Three-Body Problem', 'Liu Cixin', '2008-01-01'],
  ['Never Let Me Go', 'Kazuo Ishiguro', '2005-03-03'],
  ['The Remains of the Day', 'Kazuo Ishiguro', '1989-05-01'],
  ['Wolf Hall', 'Hilary Mantel', '2009-04-30'],
  ['The Road', 'Cormac McCarthy', '2006-09-26'],
  ['Half of a Yellow Sun', 'Chimamanda Ngozi Adichie', '2006-08-11'],
  ['The Structure and Interpretation of Computer Programs', 'Harold Abelson', '1985-01-01'],
  ['The Pragmatic Programmer', 'Andrew Hunt', '1999-10-20'],
  ['Designing Data-Intensive Applications', 'Martin Kleppmann', '2017-03-16'],
]

// Start-up refusals as the server reports them: one line, no stack, the server's exit codes.
const config = loadConfigOrExit()
const logger = createLogger(config.log.level)
const database = await openDatabase(config.database, logger).catch((error: unknown) => {
  if (!(error instanceof EmbeddedFolderError)) throw error
  logger.fatal(error.message)
  process.exit(error.exitCode)
})
try {
  if (config.database.kind === 'embedded') await createMigrator(database).up()
  const books = createBooksRepository(database)
  for (const [index, [title, author, published_date]] of BOOKS.entries()) {
    const input: BookInput = { title, author, published_date, status: index % 3 === 0 ? 'verified' : 'pending' }
    await books.create(input)
  }
  logger.info({ count: BOOKS.length, database: config.database.kind }, 'seeded books')
} finally {
  await database.close()
}
