-- name: findings_by_status
-- description: Finding mentions by status (present, absent, uncertain) for every region under a
--   region of the anatomy DAG: how many mentions, in how many cases.
-- param region (region, default lung): Region of the anatomy DAG; findings of every region under it count.
-- returns: region, status, mentions, cases
-- needs: findings
SELECT r.name AS region, f.status, COUNT(*) AS mentions, COUNT(DISTINCT f.case_id) AS cases
FROM findings AS f
JOIN anatomy_closure AS c ON c.descendant_id = f.region_id
JOIN anatomy AS a ON a.region_id = c.ancestor_id
JOIN anatomy AS r ON r.region_id = f.region_id
WHERE a.name = $region
GROUP BY r.name, f.status
ORDER BY r.name, f.status
