-- name: cohort_by_label
-- description: A cohort for export: cases positive for one CT-RATE label, optionally narrowed by
--   sex, age range and split.
-- param label (ct_rate_label): CT-RATE class, in any case (e.g. Lung nodule, Pleural effusion).
-- param sex (enum M|F, optional): Only this sex; both when omitted.
-- param min_age (int, default 0): Youngest age kept, years.
-- param max_age (int, default 150): Oldest age kept, years.
-- param split (enum train|validation, optional): Only this split; every split when omitted.
-- returns: case_id, patient_id, split, sex, age
-- needs: case_labels
-- example: label="Lung nodule"
SELECT c.case_id, c.patient_id, c.split, c.sex, c.age
FROM cases AS c
JOIN case_labels AS l ON l.case_id = c.case_id
WHERE l.kind = 'ct_rate' AND l.label = $label AND l.value = 1
  AND c.age BETWEEN $min_age AND $max_age
  AND ($sex IS NULL OR c.sex = $sex)
  AND ($split IS NULL OR c.split = $split)
ORDER BY c.case_id
