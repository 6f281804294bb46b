"""Word lists of the free-text cleaner: what is never a name, what announces one.

Everything here is a plain, reviewed list: sites extend the clinical vocabulary
through their profile's allow-list rather than by editing code. Words are stored
folded (lower case, no accents), the way :func:`privguard.text.names.fold` folds text.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in text.lower().split() if w)


#: Anatomy, modalities, sequences, procedures, findings, positioning, units and
#: devices: never a person's name, even where a name list has them (``Head``,
#: ``Brain``, ``Chest``, ``Ray`` in X-Ray, ``Vida`` the scanner).
CLINICAL = _words(
    """
    head neck chest thorax thoracic abdomen abdominal pelvis pelvic brain skull face facial orbit orbits
    sinus sinuses spine spinal cervical lumbar sacral sacrum coccyx shoulder arm elbow forearm wrist hand
    finger fingers thumb hip thigh knee leg ankle foot feet toe toes heel breast breasts lung lungs heart
    cardiac liver hepatic kidney kidneys renal bladder prostate uterus ovary ovaries testis testes
    pancreas spleen gallbladder bowel colon rectum stomach esophagus aorta aortic carotid vessel vessels
    artery arteries vein veins venous arterial coronary pulmonary cerebral temporal frontal parietal
    occipital pituitary sella iac iacs mastoid mandible maxilla jaw tmj clavicle scapula rib ribs sternum
    humerus radius ulna femur tibia fibula patella calcaneus talus bone bones joint joints muscle
    soft tissue tissues body whole total upper lower left right bilateral bilat lt rt both side sides
    anterior posterior lateral medial proximal distal superior inferior axial sagittal coronal oblique
    transverse ap pa lat obl lao rao lpo rpo sag cor ax tra trans sup inf ant post pre mid
    supine prone decubitus erect upright standing seated
    portable mobile bedside frontal view views series image images scout localizer localiser topogram
    survey routine standard protocol contrast noncontrast non wo w without with pre post delayed delay
    phase arterial venous portal equilibrium dynamic perfusion diffusion angio angiogram angiography
    venogram arthrogram myelogram fluoro fluoroscopy mammo mammogram mammography tomo tomosynthesis
    ultrasound sono sonogram doppler echo echocardiogram ct cta ctp mr mri mra mrv mrcp pet spect nm
    xr x-ray xray ray rays dx cr dr rf us mg ot sr pr ko kos seg rtstruct rtplan rtdose dose cone beam
    cbct dexa dxa bmd scan scans scanner exam exams examination study studies procedure biopsy
    drainage injection aspiration ablation embolization stent catheter line tube port pacemaker
    implant prosthesis clip clips coil coils marker markers wire needle screw screws plate plates
    recon reconstruction reformat reformats mpr mip minip vr volume rendering thin thick slice slices
    mm cm ml mg kg kv kvp ma mas sec ms hz tesla gauss bolus tracking timing test scout flair stir
    dwi adc swi tof fiesta blade propeller vibe space lava thrive mprage bravo ciss trufi haste ssfse
    fse tse gre spgr fspgr dixon ideal cube sense asset grappa ir fs fat sat water inphase opphase
    in opp out t1 t2 t1w t2w pd pdw gad gado gadolinium iodine iodinated barium oral iv intravenous
    omnipaque visipaque isovue optiray ultravist iopamidol iohexol iodixanol gadovist dotarem
    magnevist multihance prohance eovist primovist clariscan fdg psma dotatate choline amyloid tau
    technetium tc99m sestamibi tetrofosmin thallium gallium indium iodine xenon
    aspirin heparin warfarin insulin metformin morphine fentanyl propofol midazolam lidocaine
    saline glucose adenosine regadenoson dobutamine nitroglycerin contrast agent agents
    normal abnormal finding findings impression history indication indications clinical reason
    pain mass lesion lesions nodule nodules tumor tumour cancer carcinoma metastasis metastases
    fracture fractures trauma injury stroke bleed hemorrhage haemorrhage infarct infarction ischemia
    edema oedema effusion pneumonia infection abscess cyst cysts stone stones calculus obstruction
    aneurysm dissection embolism embolus thrombosis dvt pe copd asthma fever cough dyspnea headache
    seizure syncope dizziness weakness numbness follow followup follow-up fu f/u eval evaluate
    evaluation rule r/o ro assess assessment screen screening staging surveillance restaging
    baseline comparison compare prior previous current new old stable unchanged improved worse
    worsening increase increased decrease decreased small large mild moderate severe acute chronic
    suspected suspicious likely possible probable known status post s/p hx dx rx tx sx
    patient pt pts physician doctor nurse tech technologist radiologist radiographer sonographer
    referring ordering performing reading attending resident fellow department dept service unit
    ward icu er ed or emergency inpatient outpatient clinic hospital center centre radiology imaging
    oncology cardiology neurology orthopedics orthopaedics urology gynecology obstetrics pediatrics
    paediatrics surgery medicine internal general family nuclear interventional vascular
    neuro neuroradiology msk body chest gi gu ent ob gyn peds onc
    siemens philips ge toshiba canon hitachi fujifilm fuji agfa carestream kodak hologic konica
    minolta varian elekta mindray esaote samsung medison shimadzu bracco bayer guerbet medtronic
    stryker zimmer biomet abbott cordis boston scientific healthineers healthcare medical systems
    somatom definition force drive edge flash sensation emotion perspective avanto aera skyra prisma
    vida sola altea amira verio trio espree magnetom biograph symbia ingenia achieva intera panorama
    brilliance iqon incisive spectral vereos gemini aquilion prime one genesis lightspeed optima
    discovery revolution signa premier architect pioneer explorer excite hdxt vct apex frontier
    logiq voluson vivid epiq affiniti acuson sequoia juniper redwood aplio xario senographe
    pristina selenia dimensions affirm mammomat inspiration revelation amulet innovality
    ysio luminos axiom artis zee allura azurion optima innova versa synergy infinity truebeam
    halcyon ethos unity clinac trilogy novalis cyberknife tomotherapy intevo ingenuity lunar prodigy
    horizon discovery nicu picu sicu micu ccu pacu pacs ris his emr ehr
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
    saturday sunday mon tue wed thu fri sat sun today yesterday tomorrow am pm
    male female man woman boy girl child infant adult baby newborn neonate elderly
    hounsfield gleason breslow clark bosniak lirads birads tirads pirads orads bi-rads li-rads
    fleischner lung-rads ecog karnofsky glasgow apgar
    """
)

#: Eponyms: surnames that name diseases, signs, fractures, classifications and devices.
#: Next to a word of :data:`EPONYM_CONTEXT` (``Hodgkin lymphoma``, ``Colles fracture``) or
#: another eponym (``Hill-Sachs``) they are clinical terms, not people.
EPONYMS = _words(
    """
    morton hodgkin parkinson alzheimer crohn wilms barrett baker colles smith ewing graves hashimoto
    bankart hill sachs salter harris wilson paget cushing addison bell down meckel hirschsprung
    kawasaki takayasu brodie osgood schlatter legg calve perthes charcot marie tooth creutzfeldt
    jakob budd chiari dandy walker arnold klippel feil lisfranc maisonneuve monteggia galeazzi
    jefferson hangman chance segond hoffa baastrup bertolotti scheuermann kienbock kienboeck
    preiser freiberg sever sinding larsen johansson perthes tillaux smith goyrand barton bennett
    rolando boxer stener bosworth weber danis lauge hansen schatzker garden pauwels gustilo
    anderson essex lopresti mason hawkins neer codman luschka magendie monro sylvius willis
    wernicke broca heschl rolandic virchow sister joseph krukenberg morison douglas retzius
    glisson couinaud riedel klatskin whipple kocher pfannenstiel mcburney murphy rovsing
    korotkoff doppler fontan glenn norwood blalock taussig rastelli ross konno mustard senning
    holter swan ganz foley hickman broviac groshong greenfield denver pleurx jackson pratt
    """
)
EPONYM_CONTEXT = _words(
    """
    disease diseases syndrome fracture fractures lesion lesions sign signs palsy cyst cysts tumor
    tumour sarcoma lymphoma thyroiditis esophagus oesophagus classification grade grading score
    type procedure operation repair shunt catheter line drain filter triad deformity node nodes
    space pouch foramen area aphasia encephalopathy ligament ulcer malformation anomaly aneurysm
    arteritis apophysitis osteochondrosis dementia's disorder criteria scale stage staging
    test maneuver manoeuvre position view views method technique incision point fat pad bursa
    neuroma neuralgia reflex phenomenon fracture-dislocation
    canal duct ducts gland glands nerve body bodies cells cell effect phenomenon law rule
    """
)

#: Words after which a capitalised name is an eponym, not a person (pair and single-name rules only).
EPONYM_DISEASE = _words(
    """
    disease syndrome murmur sign fracture lesion palsy lymphoma sarcoma tumor tumour cyst neuroma
    thyroiditis deformity malformation aneurysm ulcer classification criteria score curve reflex
    phenomenon triad arteritis encephalopathy dementia anomaly procedure operation maneuver manoeuvre
    """
)

#: Function words and everyday nouns of clinical notes: never a name, even after a title.
FUNCTION = _words(
    """
    a an the and or but nor of to in on at by for from with without into onto over under
    above below between after before during since until per via vs versus as is are was were be
    been being am do does did done has have had would shall should can could might must
    not no yes all any some each every other others another such same more most less least much
    many few several this that these those it its he she him her his hers they them their we us
    our you your i me my mine who whom whose which what when where why how than then there here
    also only very just still again once twice please note noted see seen saw call called calling
    ok okay re cc attn fyi asap stat prn bid tid qid qd po sq im
    phone telephone tel email e-mail fax mail letter report reports request requested order
    orders ordered form forms chart record records note notes message voicemail pager page
    result results review reviewed read signed dictated transcribed performed approved verified
    scanned acquired entered referral consult consultation appointment visit admission discharge
    family home work office room bed floor station desk front main general daily weekly monthly
    mr mrs ms dr prof sir madam team staff on-call oncall covering practitioner assistant
    manager supervisor coordinator specialist director chief head lead senior junior
    """
)
#: Everyday English words that are also given names or surnames in some locale's list:
#: never a name on their own or in a pair (they still count after a title: ``Dr. Rose``).
COMMON = _words(
    """
    will may mark grace ray gene bill pat art don sue rob jack hope faith joy dawn june april
    august summer autumn winter spring iris ivy lily daisy holly ruby amber crystal pearl jade angel
    chase hunter rich frank guy page lane bob sandy penny rusty chip buck drew sky river storm rain
    major king young long white black green gray grey brown price cash case child love rose low high
    best bell hall wood park sun moon star gold silver stone rock field fields ford bush
    bishop cook cooper mason miller taylor turner walker baker carter fisher porter potter
    parker ward rice lamb fox wolf bird crane swan drake finch hawk nash sharp short strong gentle
    noble good goodman wise worthy sage sterling willing wills early late small large sharp
    """
)

#: Words that announce a person's name after them (titles, roles, ``by``, ``per``...).
TITLES = _words(
    """
    dr doctor prof professor mr mrs ms miss mx mme mlle sr sra srta herr frau dott dra drs
    nurse rn lpn np pa-c crna tech technologist technician tech. radiographer sonographer
    physician radiologist resident fellow attending surgeon therapist physicist operator
    dosimetrist registrar consultant midwife pharmacist student intern
    by per attn cc contact contacted named aka nee née
    mother father mom mum dad wife husband spouse partner son daughter sister brother guardian
    parent parents relative friend caregiver grandmother grandfather aunt uncle niece nephew
    """
)
#: Titles and roles after which any capitalised word that is not clinical is a name
#: (``Dr. Cuddy``, ``Dr. House``); after the other :data:`TITLES` (``by``, ``per``, ``cc``,
#: relatives) only words that are names in the dictionary or not English words.
HONORIFICS = _words(
    """
    dr doctor prof professor mr mrs ms miss mx mme mlle sr sra srta herr frau dott dra drs
    nurse rn lpn np crna tech technologist technician radiographer sonographer physician
    radiologist resident fellow attending surgeon therapist physicist operator dosimetrist
    registrar consultant midwife pharmacist
    """
)
#: Words after which a dictionary name (not any capitalised word) is a name.
WEAK_TRIGGERS = _words(
    "for with to from patient pt pat called call spoke told informed asked notify notified inform"
)
#: A name may follow these role words after a colon or without one ("Tech: Maria").
ROLE_LABELS = _words(
    "name patient pt operator tech technologist technician physician radiologist nurse performer "
    "performing reader reading referring ordering requesting signed signature by contact attn cc "
    "radiographer sonographer resident fellow attending author verifier"
)

#: Keywords after which a code-like token is an identifier (see docs/deidentification.md).
ID_KEYWORDS = _words(
    """
    ref reference refno ref# ref. no no. nr nr. num number # id ident identifier mrn mr# pid
    acc accession accno acc# order ord order# requisition req req# case case# encounter enc visit
    admission adm account acct episode specimen sample lab barcode ticket claim policy member
    insurance subscriber protocol proto study trial subject participant record chart file
    report rpt exam# exam study# series# serial sn s/n device license licence permit badge
    employee staff badge ssn nhs nhi health-card hcn medicare medicaid
    """
)

#: Short acronyms of protocols and sequences that look like codes after ``protocol``.
PROTOCOL_ACRONYMS = _words(
    """
    ctpa hrct ctcap ctap ctabd ctkub kub ivp ctu ctv ctc mrcp mrat mrav mrec cmr ccta cac
    fiesta flair stir mprage bravo dwibs vibe haste trufi ciss space cube lava thrive mdixon
    swan swi tof pcmra pc-mra epi bold dti dsc dce asl mrs svs csi pet-ct petct spect-ct
    lowdose ldct ultra-low routine standard axial helical spiral sequential
    """
)

#: Street words: a number followed by words ending in one of these is an address.
STREET_WORDS = _words(
    """
    street st st. avenue ave ave. av road rd rd. boulevard blvd blvd. lane ln ln. drive
    court crt place pl pl. terrace terr way parkway pkwy circle cir highway hwy route rte
    square sq trail trl crescent cres close grove gardens mews row alley plaza broadway
    """
)
#: More street types (the USPS suffixes faker's addresses use: ``Johnson Track``, ``Michael
#: Manor``): only capitalised, after capitalised non-clinical words (``2 Bone Spur`` is no address).
STREET_WORDS_CAPITALISED = _words(
    """
    alley avenue branch bridge brook brooks burg burgs bypass camp canyon cape causeway center
    centers circle circles cliff cliffs club common corner corners course court courts cove coves
    creek crescent crest crossing crossroad curve dale dam divide drive drives estate estates
    expressway extension extensions fall falls ferry field fields flat flats ford fords forest forge
    forges fork forks fort freeway garden gardens gateway glen glens green greens grove groves harbor
    harbors haven heights highway hill hills hollow inlet island islands isle junction junctions key
    keys knoll knolls lake lakes land landing lane light lights loaf lock locks lodge loop mall manor
    manors meadow meadows mews mill mills mission motorway mount mountain mountains neck orchard oval
    overpass park parks parkway parkways pass passage path pike pine pines place plain plains plaza
    point points port ports prairie radial ramp ranch rapid rapids rest ridge ridges river road roads
    route row rue run shoal shoals shore shores skyway spring springs spur spurs square squares
    station stravenue stream street streets summit terrace throughway trace track trafficway trail
    tunnel turnpike underpass union unions valley valleys via viaduct view views village villages
    ville vista walk walks wall way ways well wells
    """
)
#: Street types that are also clinical words (``iliac crest``, ``thoracic inlet``, ``bone spur``,
#: ``fracture union``, ``plain film``): after a clinical word they are no address.
STREET_WORDS_CLINICAL = _words(
    """
    branch bridge crest curve divide extension extensions fall falls flat fork junction inlet key
    light loop neck pass passage path plain point rapid rest ridge run spur spurs station stream
    track trace union valley view views walk wall way well center centers course common cape
    """
)
#: Words of unit designators that continue an address ("Apt 4B").
UNIT_WORDS = _words("apt apartment suite ste unit floor fl flat room rm bldg building #")
#: Foreign street words that come first ("rue de la Paix 12", "Via Roma 3").
STREET_FIRST = _words(
    "rue avenue boulevard chemin place via viale piazza corso calle avenida rua praca plaza ulica"
)

US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "PR",
        "GU",
        "VI",
        "AS",
        "FM",
        "MH",
        "MP",
        "PW",
        "AA",
        "AE",
        "AP",
    ]
)
US_STATE_NAMES = _words(
    """alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii
    idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan
    minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee
    texas utah vermont virginia washington wisconsin wyoming"""
)

#: Chinese clinical characters: a Han run containing one is not a name.
ZH_CLINICAL_CHARS = frozenset(
    "部位侧常扫强化查检影像片骨肺肝胸腹头颈脑脊髓肾脾胰胆囊心血管瘤癌结节炎症病痛伤折术后前左右上下内外全身双单增"
    "造注射剂对比规复随访疗治诊断报告像素层厚螺旋轴冠矢状位平面重建窗盆腔膝肩肘腕踝足手臂腿乳腺甲状淋巴主动静脉"
    "正异无未见示考虑建议观察患者病人医师生技护士科室院号码岁月日年时分秒男女性"
)
#: Words before a Chinese/Japanese/Korean name (patient, doctor, technician, signed...).
CJK_TRIGGERS = (
    "患者",
    "病人",
    "姓名",
    "医生",
    "医师",
    "醫師",
    "技师",
    "技師",
    "护士",
    "護士",
    "主任",
    "签名",
    "署名",
    "担当",
    "操作者",
    "検査者",
    "氏名",
    "환자",
    "성명",
    "이름",
    "담당",
    "의사",
    "기사",
    "간호사",
)
#: Words right after a CJK name (honorifics, roles).
CJK_HONORIFICS = (
    "先生",
    "女士",
    "小姐",
    "医生",
    "大夫",
    "老师",
    "同志",
    "さん",
    "様",
    "さま",
    "氏",
    "君",
    "ちゃん",
    "先生",
    "선생님",
    "님",
    "씨",
)
#: Korean particles that may follow a name.
KO_PARTICLES = (
    "에게서",
    "에게",
    "께서",
    "님은",
    "님이",
    "님의",
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "의",
    "과",
    "와",
    "도",
)
