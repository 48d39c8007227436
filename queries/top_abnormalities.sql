-- name: top_abnormalities
-- description: The commonest abnormalities (present findings) by number of cases, and the share
--   of cases that have each (the RadGenome-ChestCT paper's Figure 4c).
-- param top (int, default 20): How many findings.
-- param split (enum train|validation, optional): Only this split; every split when omitted.
-- returns: term, cases, share
WITH scope AS (
    SELECT case_id FROM cases WHERE $split IS NULL OR split = $split
), hits AS (
    SELECT f.term, COUNT(DISTINCT f.case_id) AS cases
    FROM findings AS f
    JOIN scope AS s ON s.case_id = f.case_id
    WHERE f.status = 'present'
    GROUP BY f.term
)
SELECT term, cases, CAST(cases AS DOUBLE) / (SELECT COUNT(*) FROM scope) AS share
FROM hits
ORDER BY cases DESC, term
LIMIT $top
