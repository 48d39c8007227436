-- name: abnormality_frequency_by_region
-- description: The commonest present findings of each top-level region: cases with the finding
--   anywhere under the region (a region under two top-level regions, like the aorta, counts in both).
-- param top (int, default 10): Findings kept per region.
-- returns: region, term, cases, term_rank
-- needs: findings
WITH per_region AS (
    SELECT a.name AS region, f.term, COUNT(DISTINCT f.case_id) AS cases
    FROM findings AS f
    JOIN anatomy_closure AS c ON c.descendant_id = f.region_id
    JOIN anatomy AS a ON a.region_id = c.ancestor_id
    WHERE f.status = 'present' AND a.is_top_level
    GROUP BY a.name, f.term
), ranked AS (
    SELECT region, term, cases,
           ROW_NUMBER() OVER (PARTITION BY region ORDER BY cases DESC, term) AS term_rank
    FROM per_region
)
SELECT region, term, cases, term_rank
FROM ranked
WHERE term_rank <= $top
ORDER BY region, term_rank
