"""The demo's report vocabulary: normal statements per topic and the catalogue of findings.

Pure data (differences as tables): each normal statement names the DAG regions it is
about and the findings it negates; each finding kind names its normalised term, the
surface forms that may stand for it in text, the CT-RATE classes it implies, the
regions it may sit in, and its sentence templates (`{loc}` a region as text with its
article, `{size}` a size as written, `{side}` right/left/bilateral, `{Side}` capitalised, `{on_side}`
'on the right', 'on both sides').
"""

from __future__ import annotations

from dataclasses import dataclass

LOBES: tuple[str, ...] = ("right lung upper lobe", "right lung middle lobe", "right lung lower lobe",
                          "left lung upper lobe", "left lung lower lobe")
UPPER = ("right lung upper lobe", "left lung upper lobe")
LOWER = ("right lung lower lobe", "left lung lower lobe")

# A normal statement: (text, regions it is about, terms it reports absent).
Statement = tuple[str, tuple[str, ...], tuple[str, ...]]

NORMAL: dict[str, tuple[Statement, ...]] = {
    "airway": (
        ("Trachea and both main bronchi are open.", ("trachea and bronchie",), ()),
        ("The trachea and lumen of both main bronchi are open and no occlusive pathology is observed.",
         ("trachea and bronchie",), ("occlusive pathology",)),
        ("Trachea and main bronchi are patent.", ("trachea and bronchie",), ())),
    "vessels": (
        ("Mediastinal main vascular structures, heart contour and size are normal.", ("heart", "mediastinum"), ()),
        ("The heart and mediastinal vascular structures have a natural appearance.", ("heart", "mediastinum"), ()),
        ("Heart contour and size are normal.", ("heart",), ())),
    "mediastinal_vessels": (
        ("The widths of the mediastinal main vascular structures are normal.", ("mediastinum",), ()),
        ("Calibration of the mediastinal major vascular structures is natural.", ("mediastinum",), ())),
    "aorta": (
        ("Thoracic aorta diameter is normal.", ("aorta",), ()),
        ("The calibration of the thoracic aorta is natural.", ("aorta",), ())),
    "noncontrast": (
        ("Mediastinal structures cannot be evaluated optimally because contrast material was not given.",
         ("mediastinum",), ()),),
    "pericardium": (
        ("Pericardial effusion-thickening was not observed.", ("heart",),
         ("pericardial effusion", "pericardial thickening")),
        ("No pericardial effusion was detected.", ("heart",), ("pericardial effusion",))),
    "esophagus": (
        ("Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.",
         ("esophagus",), ("tumoral wall thickening",)),
        ("No pathological wall thickening was observed in the esophagus within the sections.",
         ("esophagus",), ("wall thickening",))),
    "lymph": (
        ("No mass or lymphadenopathy was detected in the mediastinum.", ("mediastinum",),
         ("mass", "lymphadenopathy")),
        ("No enlarged lymph nodes were detected in the prevascular, paratracheal, subcarinal or bilateral "
         "hilar regions.", ("mediastinum",), ("lymphadenopathy",)),
        ("No lymph node of pathological size was detected in the mediastinum and both hila.", ("mediastinum",),
         ("lymphadenopathy",))),
    "thyroid": (
        ("Thyroid gland sizes are natural.", ("thyroid gland",), ()),
        ("The thyroid gland appears normal in size and density.", ("thyroid gland",), ())),
    "breast": (("Both breasts and the subcutaneous fatty tissue are normal.", ("breast",), ()),),
    "lung": (
        ("Aeration of both lungs is normal and no nodular or infiltrative lesion was detected in the lung "
         "parenchyma.", ("lung",), ("pulmonary nodule", "infiltration")),
        ("No mass or infiltrative lesion was detected in both lungs.", ("lung",), ("mass", "infiltration"))),
    "lung_no_nodule": (
        ("No nodular lesion was detected in either lung.", ("lung",), ("pulmonary nodule",)),
        ("A mass or nodule was not observed in both lungs.", ("lung",), ("mass", "pulmonary nodule"))),
    "pleura": (
        ("Pleural effusion-thickening was not detected in both hemithorax.", ("pleura",),
         ("pleural effusion", "pleural thickening")),
        ("Bilateral pleural effusion or thickening was not observed.", ("pleura",),
         ("pleural effusion", "pleural thickening"))),
    "upper_abdomen": (
        ("Upper abdominal organs included in the sections are normal.", ("abdomen",), ()),
        ("No significant pathology was detected in the upper abdominal sections.", ("abdomen",), ())),
    "liver": (
        ("No space-occupying lesion was detected in the liver sections included in the examination.", ("liver",),
         ("space-occupying lesion",)),
        ("Liver size and parenchymal density are normal.", ("liver",), ())),
    "adrenal": (
        ("Bilateral adrenal glands were normal and no space-occupying lesion was detected.", ("adrenal gland",),
         ("space-occupying lesion",)),),
    "bone": (
        ("Bone structures in the study area are natural.", ("bone",), ()),
        ("No lytic-destructive lesion was detected in the bone structures.", ("bone",),
         ("lytic-destructive lesion",))),
    "vertebrae": (
        ("Vertebral corpus heights are preserved.", ("vertebrae",), ()),
        ("Thoracic vertebral corpus heights and alignment are normal.", ("thoracic vertebrae",), ())),
}

# Report order: (topic, probability that a normal topic is mentioned at all).
TOPICS: tuple[tuple[str, float], ...] = (
    ("airway", 1.0), ("vessels", 1.0), ("aorta", 0.8), ("noncontrast", 0.6), ("pericardium", 1.0),
    ("esophagus", 1.0), ("lymph", 1.0), ("thyroid", 0.3), ("breast", 0.1), ("lung", 1.0), ("pleura", 1.0),
    ("upper_abdomen", 0.9), ("liver", 0.8), ("adrenal", 0.8), ("bone", 1.0), ("vertebrae", 0.8))

# Surface forms of the terms normal statements negate (their raw_text is the one in the sentence).
ABSENT_FORMS: dict[str, tuple[str, ...]] = {
    "pulmonary nodule": ("nodular lesion", "nodule", "nodular"), "infiltration": ("infiltrative lesion",),
    "pericardial thickening": ("thickening",), "pleural thickening": ("thickening",),
    "lymphadenopathy": ("lymphadenopathy", "lymph nodes", "lymph node"), "wall thickening": ("wall thickening",),
}

LUNG_OPENERS = ("When examined in the lung parenchyma window;", "In the evaluation of both lung parenchyma;")

# Hedges appended to a finding's sentence: key -> (tail replacing the final '.', uncertain term, its words).
UNCERTAIN_TAILS: dict[str, tuple[str, str, str]] = {
    "ipln": (" (intrapulmonary lymph node?).", "intrapulmonary lymph node", "intrapulmonary lymph node"),
    "malignancy": ("; malignancy cannot be excluded.", "malignancy", "malignancy"),
    "infection": ("; an infectious process cannot be excluded.", "infection", "infectious process"),
    "pneumonia": (", compatible with pneumonic infiltration.", "pneumonic infiltration", "pneumonic infiltration"),
}

TECHNIQUE = {
    "plain": ("Multislice scanning was performed without intravenous contrast material, with {mm} mm "
              "reconstructions from the thoracic inlet to the upper abdomen.",
              "Non-contrast axial images of the thorax were obtained with {mm} mm slice thickness."),
    "contrast": ("Multislice scanning was performed after intravenous contrast material, with {mm} mm "
                 "reconstructions from the thoracic inlet to the upper abdomen.",
                 "Contrast-enhanced axial images of the thorax were obtained with {mm} mm slice thickness."),
}
CLINICAL = ("Cough.", "Shortness of breath.", "Fever, cough.", "Follow-up of a known pulmonary nodule.",
            "Chest pain.", "Preoperative evaluation.", "Suspected pneumonia.", "Smoker, dyspnea.")


@dataclass(frozen=True)
class FindingKind:
    """One kind of abnormal finding and how reports write it."""

    term: str                       # normalised term (findings.term)
    raws: tuple[str, ...]           # surface forms; the one in the sentence is its raw_text
    labels: tuple[str, ...]         # CT-RATE classes implied when present
    disorder: str                   # case-level disorder phrase
    regions: tuple[str, ...]        # DAG regions it may be placed in
    topic: str                      # the normal topic it belongs to
    mode: str                       # "replace" the topic's normal statement, or "add" after it
    unsized: tuple[str, ...]        # templates without a size
    impression: str                 # impression template ({size} is ' (4.6 mm)' or '')
    sized: tuple[str, ...] = ()     # templates with {size}
    size_range: tuple[float, float] | None = None
    sides: tuple[str, ...] = ()     # lateralities to draw from when the region has no side
    p_size: float = 0.0             # probability the report gives a size (when size_range)
    two_dims: bool = False          # sizes may be written '14x9 mm'
    hedge: str = ""                 # UNCERTAIN_TAILS key
    p_hedge: float = 0.0
    weight: float = 1.0             # relative frequency


def _k(term: str, raws: str, labels: tuple[str, ...], disorder: str, regions: tuple[str, ...], topic: str,
       mode: str, unsized: tuple[str, ...], impression: str, **kw) -> FindingKind:
    return FindingKind(term, tuple(raws.split("|")), labels, disorder, regions, topic, mode, unsized,
                       impression, **kw)


KINDS: dict[str, FindingKind] = {
    "nodule": _k(
        "pulmonary nodule", "nodule", ("Lung nodule",), "pulmonary nodules", LOBES, "lung", "replace",
        ("Millimetric nonspecific nodules are observed in {loc}.",),
        "Nonspecific nodule in {loc}{size}.",
        sized=("A nonspecific nodule measuring {size} is observed in {loc}.",
               "There is a solid nodule with a diameter of {size} in {loc}.",
               "Several nonspecific nodules are observed in both lungs, the largest of which is in {loc} ({size})."),
        size_range=(3.0, 24.0), p_size=0.9, hedge="ipln", p_hedge=0.35, weight=3.0),
    "ground_glass": _k(
        "ground glass opacity", "ground glass", ("Lung opacity",), "ground-glass opacities", LOBES, "lung",
        "replace", ("Ground glass density areas are observed in {loc}.",
                    "There are patchy ground glass opacities in {loc}."),
        "Ground glass opacities in {loc}.", hedge="infection", p_hedge=0.4, weight=2.0),
    "consolidation": _k(
        "consolidation", "consolidation", ("Consolidation",), "pulmonary consolidation", LOBES,
        "lung", "replace", ("Patchy consolidation areas with air bronchograms are observed in {loc}.",),
        "Consolidation in {loc}{size}.", sized=("A consolidation area of {size} is observed in {loc}.",),
        size_range=(20.0, 45.0), p_size=0.5, hedge="pneumonia", p_hedge=0.5, weight=1.5),
    "emphysema": _k(
        "emphysema", "emphysematous changes|emphysema", ("Emphysema",), "emphysema",
        ("lung upper lobe",) + UPPER, "lung", "replace",
        ("Centriacinar emphysematous changes are observed in {loc}.",
         "There are paraseptal emphysematous changes in {loc}."), "Emphysema in {loc}.", weight=1.5),
    "atelectasis": _k(
        "atelectasis", "atelectasis", ("Atelectasis",), "atelectasis", LOWER + ("right lung middle lobe",),
        "lung", "replace", ("Subsegmental atelectasis is observed in {loc}.",
                            "Linear atelectasis was observed in {loc}."),
        "Atelectasis in {loc}.", weight=2.0),
    "fibrotic": _k(
        "fibrotic sequelae", "sequelae", ("Pulmonary fibrotic sequela",), "pleuroparenchymal sequelae", UPPER,
        "lung", "replace", ("Pleuroparenchymal sequelae density increases were observed in the apex of {loc}.",
                            "Fibrotic sequelae changes are observed in {loc}."),
        "Fibrotic sequelae in {loc}."),
    "bronchiectasis": _k(
        "bronchiectasis", "bronchiectasis|bronchiectatic", ("Bronchiectasis",), "bronchiectasis",
        LOWER + ("lung lower lobe",), "lung", "replace",
        ("Cylindrical bronchiectasis is observed in {loc}.", "Bronchiectatic changes were observed in {loc}."),
        "Bronchiectasis in {loc}.", weight=0.8),
    "peribronchial": _k(
        "peribronchial thickening", "peribronchial thickening|peribronchial wall thickening",
        ("Peribronchial thickening",), "peribronchial thickening", LOWER + ("right lung middle lobe",), "lung",
        "replace", ("There is peribronchial thickening in {loc}.",
                    "Peribronchial wall thickening is observed in {loc}."),
        "Peribronchial thickening in {loc}.", weight=0.8),
    "mosaic": _k(
        "mosaic attenuation pattern", "mosaic attenuation", ("Mosaic attenuation pattern",),
        "mosaic attenuation pattern", ("lung", "lung lower lobe"), "lung", "replace",
        ("Mosaic attenuation pattern is observed in {loc}.",), "Mosaic attenuation pattern in {loc}.",
        weight=0.6),
    "septal": _k(
        "interlobular septal thickening", "interlobular septal thickening", ("Interlobular septal thickening",),
        "interlobular septal thickening", ("lung lower lobe",) + LOWER, "lung", "replace",
        ("Interlobular septal thickening is observed in {loc}.",), "Interlobular septal thickening in {loc}.",
        weight=0.6),
    "pleural_effusion": _k(
        "pleural effusion", "pleural effusion", ("Pleural effusion",), "pleural effusion",
        ("pleura",), "pleura", "replace", ("Minimal pleural effusion is observed {on_side}.",),
        "{Side} pleural effusion{size}.",
        sized=("A pleural effusion measuring {size} in its thickest part was observed {on_side}.",),
        size_range=(8.0, 40.0), p_size=0.7, sides=("right", "left", "bilateral"), weight=1.5),
    "pericardial_effusion": _k(
        "pericardial effusion", "pericardial effusion", ("Pericardial effusion",), "pericardial effusion",
        ("heart",), "pericardium", "replace", ("There is minimal pericardial effusion.",),
        "Pericardial effusion{size}.", sized=("Pericardial effusion reaching {size} in thickness was observed.",),
        size_range=(5.0, 15.0), p_size=0.6),
    "cardiomegaly": _k(
        "cardiomegaly", "cardiomegaly", ("Cardiomegaly",), "cardiomegaly", ("heart",), "vessels", "replace",
        ("The cardiothoracic index increased in favor of the heart (cardiomegaly).",), "Cardiomegaly."),
    "aortic_calcification": _k(
        "arterial wall calcification", "calcific atheroma plaques|calcific plaques",
        ("Arterial wall calcification",), "atherosclerosis", ("aorta",), "aorta", "add",
        ("Calcific atheroma plaques are observed in the walls of the thoracic aorta.",
         "There are millimetric calcific plaques in the aortic arch and descending aorta."),
        "Calcific atheroma plaques in the thoracic aorta.", weight=2.0),
    "coronary_calcification": _k(
        "coronary artery calcification", "coronary artery wall calcifications|calcific plaques",
        ("Coronary artery wall calcification",), "coronary artery disease", ("heart",), "vessels", "add",
        ("Calcific plaques are observed in the coronary artery walls.",
         "There are coronary artery wall calcifications."), "Coronary artery wall calcifications.",
        weight=1.5),
    "hiatal_hernia": _k(
        "hiatal hernia", "hiatal hernia", ("Hiatal hernia",), "hiatal hernia", ("esophagus",), "esophagus", "add",
        ("There is a sliding type hiatal hernia at the lower end of the esophagus.",), "Hiatal hernia."),
    "lymphadenopathy": _k(
        "lymphadenopathy", "lymph node", ("Lymphadenopathy",), "mediastinal lymphadenopathy", ("mediastinum",),
        "lymph", "replace", ("Enlarged lymph nodes are observed in the right paratracheal area.",),
        "Mediastinal lymph node{size}.",
        sized=("A lymph node measuring {size} was observed in the right paratracheal area.",
               "Lymph nodes with a short axis reaching {size} are observed in the right paratracheal area."),
        size_range=(11.0, 25.0), p_size=0.9, two_dims=True, sides=("right",), weight=1.5),
    "catheter": _k(
        "catheter", "catheter", ("Medical material",), "central venous catheter", ("superior vena cava",),
        "vessels", "add",
        ("A port catheter extending from the right internal jugular vein to the superior vena cava is "
         "observed.",), "Port catheter in the superior vena cava.", weight=0.7),
    "thyroid_nodule": _k(
        "thyroid nodule", "nodule", (), "thyroid nodule", ("right thyroid", "left thyroid"), "thyroid",
        "replace", ("A hypodense nodule is observed in the {side} thyroid lobe.",), "{Side} thyroid nodule{size}.",
        sized=("There is a hypodense nodule with a diameter of {size} in the {side} thyroid lobe.",),
        size_range=(6.0, 20.0), p_size=0.8, weight=0.7),
    "hepatosteatosis": _k(
        "hepatosteatosis", "hepatosteatosis", (), "hepatosteatosis", ("liver",), "upper_abdomen", "replace",
        ("Liver parenchyma density is diffusely decreased (hepatosteatosis).",), "Hepatosteatosis."),
    "osteophytes": _k(
        "osteophytes", "osteophytes", (), "degenerative bone disease", ("thoracic vertebrae",), "vertebrae",
        "add", ("Degenerative osteophytes are observed in the thoracic vertebrae.",),
        "Degenerative osteophytes in the thoracic vertebrae."),
    "rib_fracture": _k(
        "rib fracture", "fracture", (), "healed rib fracture", ("left rib 6", "right rib 7", "left rib 8"), "bone",
        "add", ("A healed fracture is observed in {loc}.",), "Healed fracture of {loc}.", weight=0.5),
    "gynecomastia": _k(
        "gynecomastia", "gynecomastia", (), "gynecomastia", ("breast",), "breast", "replace",
        ("Bilateral gynecomastia was observed.",), "Bilateral gynecomastia.", weight=0.5),
}
