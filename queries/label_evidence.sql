-- name: label_evidence
-- description: Why a case carries a CT-RATE label: the finding mentions that are evidence for the
--   class (findings.ct_rate_label), each with its status, region and the sentence it was read from,
--   and the case's label row. A derived label is positive exactly when one of these is
--   present; uncertain and absent mentions follow the present ones, so a negative label shows what
--   was hedged or negated.
-- param case_id (str): The case (volume name, e.g. valid_368_a_1.nii.gz).
-- param label (ct_rate_label): One of CT-RATE's 18 classes, in any case.
-- returns: case_id, label, value, label_source, status, term, raw_text, size_mm, laterality, region,
--   anatomy_path, sentence
-- needs: findings
-- example: case_id=valid_368_a_1.nii.gz label="Lung nodule"
SELECT f.case_id, f.ct_rate_label AS label, l.value, l.source AS label_source, f.status, f.term,
       f.raw_text, f.size_mm, f.laterality, a.name AS region, f.anatomy_path, f.sentence
FROM findings AS f
LEFT JOIN case_labels AS l
  ON l.case_id = f.case_id AND l.kind = 'ct_rate' AND l.label = f.ct_rate_label
LEFT JOIN sentences AS s ON s.sentence_id = f.sentence_id  -- report order
LEFT JOIN anatomy AS a ON a.region_id = f.region_id
WHERE f.case_id = $case_id AND f.ct_rate_label = $label
ORDER BY CASE f.status WHEN 'present' THEN 0 WHEN 'uncertain' THEN 1 ELSE 2 END, s.ordinal, f.finding_id
