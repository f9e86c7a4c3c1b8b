-- +goose Up
-- `q` (title ILIKE '%…%') is planned from the title's histogram: the planner tries the pattern on its sampled
-- titles. With the default 100 entries a substring that one title in a hundred has matches one entry or none,
-- and the estimate jumps a hundredfold between ANALYZE runs: the planner then sorts every match instead of reading
-- the sort's index until a page is full (the README's Performance section has the figures). Ten times the sample
-- keeps the estimate near the truth.
ALTER TABLE books ALTER COLUMN title SET STATISTICS 1000;
ANALYZE books (title);

-- +goose Down
ALTER TABLE books ALTER COLUMN title SET STATISTICS -1;
