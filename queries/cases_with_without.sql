-- name: cases_with_without
-- description: Cases with one finding present and another one not present anywhere in the case
--   (terms of finding_terms; a synonym or plural gives its term), e.g. effusion without cardiomegaly.
-- param with_term (term): The finding the case must have (status present); a term, synonym or plural.
-- param without_term (term): The finding the case must not have (no present mention).
-- returns: case_id, patient_id, split
-- needs: findings
-- example: with_term="pleural effusion" without_term="pericardial effusion"
SELECT c.case_id, c.patient_id, c.split
FROM cases AS c
WHERE EXISTS (
    SELECT 1 FROM findings AS f
    WHERE f.case_id = c.case_id AND f.status = 'present' AND f.term = $with_term)
  AND NOT EXISTS (
    SELECT 1 FROM findings AS f
    WHERE f.case_id = c.case_id AND f.status = 'present' AND f.term = $without_term)
ORDER BY c.case_id
