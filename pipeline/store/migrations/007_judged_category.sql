-- The safety judge's category of a record (its data's `judged_category`), stored as a column so that
-- the dataset browser filters and counts by it without parsing every record's JSON. Commits fill it;
-- this fills it for the records already there.
ALTER TABLE records ADD COLUMN judged_category VARCHAR;
UPDATE records SET judged_category = json_extract_string(data, '$.judged_category')
WHERE json_extract_string(data, '$.judged_category') IS NOT NULL;
