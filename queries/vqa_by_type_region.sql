-- name: vqa_by_type_region
-- description: Question-answer pairs of one type about any region under a region of the anatomy
--   DAG, in released order.
-- param type (enum abnormality|presence|location|size, default abnormality): The VQA type.
-- param region (region, default lung): Region of the anatomy DAG; pairs about every region under it count.
-- param limit (int, default 1000): At most this many rows.
-- returns: case_id, type, anatomy_path, question, answer, term
-- needs: vqa
SELECT v.case_id, v.type, v.anatomy_path, v.question, v.answer, v.term
FROM vqa AS v
JOIN anatomy_closure AS c ON c.descendant_id = v.region_id
JOIN anatomy AS a ON a.region_id = c.ancestor_id
WHERE a.name = $region AND v.type = $type
ORDER BY v.case_id, v.ordinal, v.vqa_id
LIMIT $limit
