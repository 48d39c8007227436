-- name: case_sentences
-- description: One case's grounded report, row by row: each sentence with its region, top-level
--   region and normal/abnormal flag, in report order (the whole-report row has no region).
-- param case_id (str): The case (volume name, e.g. train_1_a_1.nii.gz).
-- returns: ordinal, region, top_level, anatomy_path, text, is_abnormal
-- needs: sentences
-- example: case_id=valid_368_a_1.nii.gz
SELECT s.ordinal, a.name AS region, a.top_level, s.anatomy_path, s.text, s.is_abnormal
FROM sentences AS s
LEFT JOIN anatomy AS a ON a.region_id = s.region_id
WHERE s.case_id = $case_id
ORDER BY s.ordinal, s.sentence_id
