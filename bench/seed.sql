-- 100,000 books for the benchmark. Ids are UUIDv7-shaped and derived from n, so the load generators and pgbench
-- can name any book without a lookup: book n is 00000000-0000-7000-8000-<n as 12 hex digits>.
-- 1,000 authors (100 books each; author k is "Author " and three letters from k, as bench/scenario.lua names them), a third of the books verified, creation times one minute apart.
INSERT INTO books (id, created_at, updated_at, published_date, status, title, author, image_url, description)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       timestamptz '2020-01-01 00:00:00+00' + n * interval '1 minute',
       timestamptz '2020-01-01 00:00:00+00' + n * interval '1 minute',
       date '1950-01-01' + (n * 7919 % 27000),
       CASE WHEN n % 3 = 0 THEN 'verified'::book_status ELSE 'pending'::book_status END,
       'Book ' || n || ' of the benchmark shelf',
       'Author ' || chr(65 + n % 1000 % 26) || chr(97 + n % 1000 / 26 % 26) || chr(97 + n % 1000 / 676),
       'https://covers.example.com/' || n || '.jpg',
       'A book seeded for the benchmark; its description is a sentence long, like most.'
FROM generate_series(1, 100000) AS n;
VACUUM (ANALYZE) books;
