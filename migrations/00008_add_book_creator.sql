-- +goose Up
-- Who created a book: the subject of the token that created it, or null without authentication and for the books
-- written before this migration. Only the creator, or a caller with books:admin, may change or delete a book, so
-- the books without one are left to books:admin.
ALTER TABLE books ADD COLUMN created_by text;

-- +goose Down
ALTER TABLE books DROP COLUMN created_by;
