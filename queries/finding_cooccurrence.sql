-- name: finding_cooccurrence
-- description: Findings that co-occur with a given finding (both present in the same case): cases
--   with both, cases with the other finding, the share of the finding's cases, and the lift
--   (how much likelier the other finding is in those cases than in all cases).
-- param term (term): The finding to start from (a term of finding_terms, a synonym or a plural).
-- param min_cases (int, default 1): Keep findings seen together in at least this many cases.
-- param limit (int, default 50): At most this many rows.
-- returns: term, cases_both, cases_term, share, lift
-- needs: findings
-- example: term="pleural effusion"
WITH present AS (
    SELECT DISTINCT case_id, term FROM findings WHERE status = 'present'
), anchor AS (
    SELECT DISTINCT case_id FROM present WHERE term = $term
), together AS (
    SELECT p.term, COUNT(*) AS cases_both
    FROM present AS p
    JOIN anchor AS x ON x.case_id = p.case_id
    WHERE p.term <> $term
    GROUP BY p.term
    HAVING COUNT(*) >= $min_cases
), term_cases AS (
    SELECT p.term, COUNT(*) AS cases_term
    FROM present AS p
    JOIN together AS t ON t.term = p.term
    GROUP BY p.term
)
SELECT t.term, t.cases_both, tc.cases_term,
       CAST(t.cases_both AS DOUBLE) / (SELECT COUNT(*) FROM anchor) AS share,
       (CAST(t.cases_both AS DOUBLE) / (SELECT COUNT(*) FROM anchor))
         / (CAST(tc.cases_term AS DOUBLE) / (SELECT COUNT(*) FROM cases)) AS lift
FROM together AS t
JOIN term_cases AS tc ON tc.term = t.term
ORDER BY t.cases_both DESC, t.term
LIMIT $limit
