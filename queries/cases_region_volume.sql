-- name: cases_region_volume
-- description: Cases whose mask of a region has a volume within a range (millilitres), largest
--   first: one row per case and mask source.
-- param region (region, default heart): Region with its own mask (the region_stats row of that region).
-- param min_ml (float, default 0): Smallest volume kept, ml.
-- param max_ml (float, optional): Largest volume kept, ml; no upper bound when omitted.
-- returns: case_id, patient_id, split, mask_source, volume_ml, voxels
-- needs: region_stats
-- example: min_ml=700
SELECT rs.case_id, c.patient_id, c.split, rs.mask_source, rs.volume_ml, rs.voxels
FROM region_stats AS rs
JOIN anatomy AS a ON a.region_id = rs.region_id
JOIN cases AS c ON c.case_id = rs.case_id
WHERE a.name = $region
  AND rs.volume_ml >= $min_ml
  AND ($max_ml IS NULL OR rs.volume_ml <= $max_ml)
ORDER BY rs.volume_ml DESC, rs.case_id, rs.mask_source
