-- The benchmark's books: :books of them by :authors authors (psql -v books=… -v authors=…, as bench/fixtures.ts
-- runs it). Ids are UUIDv7-shaped and derived from n, so the load generators and pgbench can name any book without
-- a lookup: book n is 00000000-0000-7000-8000-<n as 12 hex digits>. Author k (k = n mod :authors) is "Author " and
-- three letters from k, as bench/scenario.lua names them; a third of the books verified; creation times one minute
-- apart; every hundredth title contains "42 of". Every book is the benchmark token's subject's ("bench", as
-- bench/fixtures.ts signs it), so its updates pass the owner check as a writer's own would.
--
-- The secondary indexes are dropped before the insert and built again from their own definitions after it: one
-- build over all rows is many times faster than keeping every index up to date row by row.
BEGIN;
SET LOCAL maintenance_work_mem = '256MB';
CREATE TEMP TABLE seed_indexes ON COMMIT DROP AS
SELECT index.indexrelid::regclass::text AS name, pg_get_indexdef(index.indexrelid) AS definition
FROM pg_index index
WHERE index.indrelid = 'books'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE pg_constraint.conindid = index.indexrelid);
DO $$
DECLARE
  seeded record;
BEGIN
  FOR seeded IN SELECT name FROM seed_indexes LOOP
    EXECUTE format('DROP INDEX %s', seeded.name);
  END LOOP;
END
$$;
INSERT INTO books (id, created_at, updated_at, published_date, status, title, author, image_url, description, created_by)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       timestamptz '2020-01-01 00:00:00+00' + n * interval '1 minute',
       timestamptz '2020-01-01 00:00:00+00' + n * interval '1 minute',
       date '1950-01-01' + (n::bigint * 7919 % 27000)::int,
       CASE WHEN n % 3 = 0 THEN 'verified'::book_status ELSE 'pending'::book_status END,
       'Book ' || n || ' of the benchmark shelf',
       'Author ' || chr(65 + n % :authors % 26) || chr(97 + n % :authors / 26 % 26) || chr(97 + n % :authors / 676),
       'https://covers.example.com/' || n || '.jpg',
       'A book seeded for the benchmark; its description is a sentence long, like most.',
       'bench'
FROM generate_series(1, :books) AS n;
DO $$
DECLARE
  seeded record;
BEGIN
  FOR seeded IN SELECT definition FROM seed_indexes LOOP
    EXECUTE seeded.definition;
  END LOOP;
END
$$;
COMMIT;
VACUUM (ANALYZE) books;
-- The seed's dirty pages and WAL are flushed now, not during the first measurement.
CHECKPOINT;
