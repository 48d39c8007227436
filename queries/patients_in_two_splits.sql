-- name: patients_in_two_splits
-- description: Patients whose cases fall in more than one split: leakage between training and
--   validation (RadGenome and CT-RATE split by patient, so a clean release returns no rows).
-- returns: patient_id, splits, first_split, last_split, cases
-- needs: cases
WITH per_split AS (
    SELECT patient_id, split, COUNT(*) AS cases
    FROM cases
    WHERE patient_id IS NOT NULL AND split IS NOT NULL
    GROUP BY patient_id, split
)
SELECT patient_id, COUNT(*) AS splits, MIN(split) AS first_split, MAX(split) AS last_split, SUM(cases) AS cases
FROM per_split
GROUP BY patient_id
HAVING COUNT(*) > 1
ORDER BY patient_id
