-- name: top_disorders
-- description: The commonest case-level disorders (RadGenome's case disorders, 'no findings' left
--   out) by number of cases, and their share of the cases with disorder data (`cases_with_data`,
--   within the split when one is given; the paper's Figure 4d).
-- param top (int, default 20): How many disorders.
-- param split (enum train|validation, optional): Only this split; every split when omitted.
-- returns: disorder, cases, cases_with_data, share
-- needs: case_labels

-- A case has disorder data when it has a `disorders` question-answer pair (a released
-- case_disorders row, 'no findings' included), a case_labels row of kind disorder, or a report read
-- for findings (a findings row, or a sentence whose normal/abnormal flag is known): such a report's
-- disorders are its present findings, and one without any is a 'no findings' case. Cases with none
-- of these (CT-RATE volumes outside RadGenome's release) are in no denominator.
WITH scope AS (
    SELECT case_id FROM cases WHERE $split IS NULL OR split = $split
), with_data AS (
    SELECT case_id FROM vqa WHERE type = 'disorders'
    UNION
    SELECT case_id FROM case_labels WHERE kind = 'disorder'
    UNION
    SELECT case_id FROM findings
    UNION
    SELECT case_id FROM sentences WHERE is_abnormal IS NOT NULL
), denominator AS (
    SELECT COUNT(*) AS cases_with_data
    FROM with_data AS d
    JOIN scope AS s ON s.case_id = d.case_id
), hits AS (
    SELECT l.label AS disorder, COUNT(DISTINCT l.case_id) AS cases
    FROM case_labels AS l
    JOIN scope AS s ON s.case_id = l.case_id
    WHERE l.kind = 'disorder' AND l.value = 1 AND LOWER(l.label) <> 'no findings'
    GROUP BY l.label
)
SELECT h.disorder, h.cases, d.cases_with_data, CAST(h.cases AS DOUBLE) / d.cases_with_data AS share
FROM hits AS h
CROSS JOIN denominator AS d
ORDER BY h.cases DESC, h.disorder
LIMIT $top
