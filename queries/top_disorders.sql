-- name: top_disorders
-- description: The commonest case-level disorders (RadGenome's case disorders, 'no findings' left
--   out) by number of cases, and the share of cases that have each (the paper's Figure 4d).
-- param top (int, default 20): How many disorders.
-- param split (enum train|validation, optional): Only this split; every split when omitted.
-- returns: disorder, cases, share
WITH scope AS (
    SELECT case_id FROM cases WHERE $split IS NULL OR split = $split
), hits AS (
    SELECT l.label AS disorder, COUNT(DISTINCT l.case_id) AS cases
    FROM case_labels AS l
    JOIN scope AS s ON s.case_id = l.case_id
    WHERE l.kind = 'disorder' AND l.value = 1 AND LOWER(l.label) <> 'no findings'
    GROUP BY l.label
)
SELECT disorder, cases, CAST(cases AS DOUBLE) / (SELECT COUNT(*) FROM scope) AS share
FROM hits
ORDER BY cases DESC, disorder
LIMIT $top
