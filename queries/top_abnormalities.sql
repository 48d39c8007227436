-- name: top_abnormalities
-- description: The commonest abnormalities (present findings) by number of cases, and their share
--   of the cases with findings data (`cases_with_data`: cases whose report was read for findings,
--   within the split when one is given; the RadGenome-ChestCT paper's Figure 4c).
-- param top (int, default 20): How many findings.
-- param split (enum train|validation, optional): Only this split; every split when omitted.
-- returns: term, cases, cases_with_data, share
-- needs: findings

-- A case has findings data when it has a findings row (of any status) or a grounded sentence whose
-- normal/abnormal flag is known. Cases with only VQA pairs, labels, images, or sentences no findings
-- were read from are in no denominator.
WITH scope AS (
    SELECT case_id FROM cases WHERE $split IS NULL OR split = $split
), with_data AS (
    SELECT case_id FROM findings
    UNION
    SELECT case_id FROM sentences WHERE is_abnormal IS NOT NULL
), denominator AS (
    SELECT COUNT(*) AS cases_with_data
    FROM with_data AS d
    JOIN scope AS s ON s.case_id = d.case_id
), hits AS (
    SELECT f.term, COUNT(DISTINCT f.case_id) AS cases
    FROM findings AS f
    JOIN scope AS s ON s.case_id = f.case_id
    WHERE f.status = 'present'
    GROUP BY f.term
)
SELECT h.term, h.cases, d.cases_with_data, CAST(h.cases AS DOUBLE) / d.cases_with_data AS share
FROM hits AS h
CROSS JOIN denominator AS d
ORDER BY h.cases DESC, h.term
LIMIT $top
