-- name: sentences_normal_abnormal
-- description: Normal and abnormal grounded sentences per top-level region and split (the
--   RadGenome-ChestCT paper's Figure 4a/b). A sentence counts for every top-level region it lies
--   under; the whole-report rows (no region) are left out, and sentences whose flag is not known
--   (no findings read from them) count as unknown, not normal.
-- returns: split, region, sentences, normal, abnormal, unknown
-- needs: sentences

-- Count per split and region first, then spread the few counts up the DAG (cheaper than
-- spreading every sentence).
WITH per_region AS (
    SELECT cs.split, s.region_id, COUNT(*) AS sentences,
           COUNT(CASE WHEN s.is_abnormal = FALSE THEN 1 END) AS normal,
           COUNT(CASE WHEN s.is_abnormal = TRUE THEN 1 END) AS abnormal,
           COUNT(CASE WHEN s.is_abnormal IS NULL THEN 1 END) AS unknown
    FROM sentences AS s
    JOIN cases AS cs ON cs.case_id = s.case_id
    WHERE s.region_id IS NOT NULL
    GROUP BY cs.split, s.region_id
)
SELECT p.split, a.name AS region, CAST(SUM(p.sentences) AS BIGINT) AS sentences,
       CAST(SUM(p.normal) AS BIGINT) AS normal, CAST(SUM(p.abnormal) AS BIGINT) AS abnormal,
       CAST(SUM(p.unknown) AS BIGINT) AS unknown
FROM per_region AS p
JOIN anatomy_closure AS c ON c.descendant_id = p.region_id
JOIN anatomy AS a ON a.region_id = c.ancestor_id
WHERE a.is_top_level
GROUP BY p.split, a.name
ORDER BY p.split, a.name
