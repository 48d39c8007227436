-- name: finding_size_distribution
-- description: Size distribution of a present finding: a histogram of its largest dimension in
--   mm (mentions and cases per bin), from the findings with a size.
-- param term (term): A finding term of finding_terms (or a synonym or plural, e.g. nodules).
-- param bin_mm (float, default 5): Bin width in mm.
-- returns: bin_start_mm, bin_end_mm, findings, cases
-- needs: findings
-- example: term=nodule
WITH sized AS (
    SELECT f.case_id, FLOOR(f.size_mm / $bin_mm) * $bin_mm AS bin_start_mm
    FROM findings AS f
    WHERE f.term = $term AND f.status = 'present' AND f.size_mm IS NOT NULL
)
SELECT bin_start_mm, bin_start_mm + $bin_mm AS bin_end_mm, COUNT(*) AS findings,
       COUNT(DISTINCT case_id) AS cases
FROM sized
GROUP BY bin_start_mm
ORDER BY bin_start_mm
