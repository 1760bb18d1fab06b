"""The 1000 ImageNet-1k (ILSVRC-2012) class names, in class-index order.

Class index `i` is the `i`-th WordNet id (synset, e.g. "n01440764") in sorted order, the order of the training
folders: torchvision's `ImageFolder`, timm and transformers number the classes so, and so does every ImageNet-1k
head, NVIDIA's MambaVision-*-1K included (not the devkit's own ILSVRC2012_ID numbering). Each name is the synset's
WordNet lemmas, comma-separated ("tench, Tinca tinca"), the form transformers' ImageNet configs carry in `id2label`.
Two synsets share a name: 134 (n02012849, the bird) and 517 (n03126707, the machine) are both "crane".

Data, generated once from a public wnid -> name table of the 1000 ILSVRC-2012 synsets, sorted by wnid and checked
against known indices (0 "tench, Tinca tinca", 281 "tabby, tabby cat", 409 "analog clock", 731 "plunger, plumber's
helper", 999 "toilet tissue, toilet paper, bathroom tissue"). The comment on each line is the index and the wnid.
"""

IMAGENET_1K_LABELS: tuple[str, ...] = (
    "tench, Tinca tinca",  # 0 n01440764
    "goldfish, Carassius auratus",  # 1 n01443537
    "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",  # 2 n01484850
    "tiger shark, Galeocerdo cuvieri",  # 3 n01491361
    "hammerhead, hammerhead shark",  # 4 n01494475
    "electric ray, crampfish, numbfish, torpedo",  # 5 n01496331
    "stingray",  # 6 n01498041
    "cock",  # 7 n01514668
    "hen",  # 8 n01514859
    "ostrich, Struthio camelus",  # 9 n01518878
    "brambling, Fringilla montifringilla",  # 10 n01530575
    "goldfinch, Carduelis carduelis",  # 11 n01531178
    "house finch, linnet, Carpodacus mexicanus",  # 12 n01532829
    "junco, snowbird",  # 13 n01534433
    "indigo bunting, indigo finch, indigo bird, Passerina cyanea",  # 14 n01537544
    "robin, American robin, Turdus migratorius",  # 15 n01558993
    "bulbul",  # 16 n01560419
    "jay",  # 17 n01580077
    "magpie",  # 18 n01582220
    "chickadee",  # 19 n01592084
    "water ouzel, dipper",  # 20 n01601694
    "kite",  # 21 n01608432
    "bald eagle, American eagle, Haliaeetus leucocephalus",  # 22 n01614925
    "vulture",  # 23 n01616318
    "great grey owl, great gray owl, Strix nebulosa",  # 24 n01622779
    "European fire salamander, Salamandra salamandra",  # 25 n01629819
    "common newt, Triturus vulgaris",  # 26 n01630670
    "eft",  # 27 n01631663
    "spotted salamander, Ambystoma maculatum",  # 28 n01632458
    "axolotl, mud puppy, Ambystoma mexicanum",  # 29 n01632777
    "bullfrog, Rana catesbeiana",  # 30 n01641577
    "tree frog, tree-frog",  # 31 n01644373
    "tailed frog, bell toad, ribbed toad, tailed toad, Ascaphus trui",  # 32 n01644900
    "loggerhead, loggerhead turtle, Caretta caretta",  # 33 n01664065
    "leatherback turtle, leatherback, leathery turtle, Dermochelys coriacea",  # 34 n01665541
    "mud turtle",  # 35 n01667114
    "terrapin",  # 36 n01667778
    "box turtle, box tortoise",  # 37 n01669191
    "banded gecko",  # 38 n01675722
    "common iguana, iguana, Iguana iguana",  # 39 n01677366
    "American chameleon, anole, Anolis carolinensis",  # 40 n01682714
    "whiptail, whiptail lizard",  # 41 n01685808
    "agama",  # 42 n01687978
    "frilled lizard, Chlamydosaurus kingi",  # 43 n01688243
    "alligator lizard",  # 44 n01689811
    "Gila monster, Heloderma suspectum",  # 45 n01692333
    "green lizard, Lacerta viridis",  # 46 n01693334
    "African chameleon, Chamaeleo chamaeleon",  # 47 n01694178
    "Komodo dragon, Komodo lizard, dragon lizard, giant lizard, Varanus komodoensis",  # 48 n01695060
    "African crocodile, Nile crocodile, Crocodylus niloticus",  # 49 n01697457
    "American alligator, Alligator mississipiensis",  # 50 n01698640
    "triceratops",  # 51 n01704323
    "thunder snake, worm snake, Carphophis amoenus",  # 52 n01728572
    "ringneck snake, ring-necked snake, ring snake",  # 53 n01728920
    "hognose snake, puff adder, sand viper",  # 54 n01729322
    "green snake, grass snake",  # 55 n01729977
    "king snake, kingsnake",  # 56 n01734418
    "garter snake, grass snake",  # 57 n01735189
    "water snake",  # 58 n01737021
    "vine snake",  # 59 n01739381
    "night snake, Hypsiglena torquata",  # 60 n01740131
    "boa constrictor, Constrictor constrictor",  # 61 n01742172
    "rock python, rock snake, Python sebae",  # 62 n01744401
    "Indian cobra, Naja naja",  # 63 n01748264
    "green mamba",  # 64 n01749939
    "sea snake",  # 65 n01751748
    "horned viper, cerastes, sand viper, horned asp, Cerastes cornutus",  # 66 n01753488
    "diamondback, diamondback rattlesnake, Crotalus adamanteus",  # 67 n01755581
    "sidewinder, horned rattlesnake, Crotalus cerastes",  # 68 n01756291
    "trilobite",  # 69 n01768244
    "harvestman, daddy longlegs, Phalangium opilio",  # 70 n01770081
    "scorpion",  # 71 n01770393
    "black and gold garden spider, Argiope aurantia",  # 72 n01773157
    "barn spider, Araneus cavaticus",  # 73 n01773549
    "garden spider, Aranea diademata",  # 74 n01773797
    "black widow, Latrodectus mactans",  # 75 n01774384
    "tarantula",  # 76 n01774750
    "wolf spider, hunting spider",  # 77 n01775062
    "tick",  # 78 n01776313
    "centipede",  # 79 n01784675
    "black grouse",  # 80 n01795545
    "ptarmigan",  # 81 n01796340
    "ruffed grouse, partridge, Bonasa umbellus",  # 82 n01797886
    "prairie chicken, prairie grouse, prairie fowl",  # 83 n01798484
    "peacock",  # 84 n01806143
    "quail",  # 85 n01806567
    "partridge",  # 86 n01807496
    "African grey, African gray, Psittacus erithacus",  # 87 n01817953
    "macaw",  # 88 n01818515
    "sulphur-crested cockatoo, Kakatoe galerita, Cacatua galerita",  # 89 n01819313
    "lorikeet",  # 90 n01820546
    "coucal",  # 91 n01824575
    "bee eater",  # 92 n01828970
    "hornbill",  # 93 n01829413
    "hummingbird",  # 94 n01833805
    "jacamar",  # 95 n01843065
    "toucan",  # 96 n01843383
    "drake",  # 97 n01847000
    "red-breasted merganser, Mergus serrator",  # 98 n01855032
    "goose",  # 99 n01855672
    "black swan, Cygnus atratus",  # 100 n01860187
    "tusker",  # 101 n01871265
    "echidna, spiny anteater, anteater",  # 102 n01872401
    "platypus, duckbill, duckbilled platypus, duck-billed platypus, Ornithorhynchus anatinus",  # 103 n01873310
    "wallaby, brush kangaroo",  # 104 n01877812
    "koala, koala bear, kangaroo bear, native bear, Phascolarctos cinereus",  # 105 n01882714
    "wombat",  # 106 n01883070
    "jellyfish",  # 107 n01910747
    "sea anemone, anemone",  # 108 n01914609
    "brain coral",  # 109 n01917289
    "flatworm, platyhelminth",  # 110 n01924916
    "nematode, nematode worm, roundworm",  # 111 n01930112
    "conch",  # 112 n01943899
    "snail",  # 113 n01944390
    "slug",  # 114 n01945685
    "sea slug, nudibranch",  # 115 n01950731
    "chiton, coat-of-mail shell, sea cradle, polyplacophore",  # 116 n01955084
    "chambered nautilus, pearly nautilus, nautilus",  # 117 n01968897
    "Dungeness crab, Cancer magister",  # 118 n01978287
    "rock crab, Cancer irroratus",  # 119 n01978455
    "fiddler crab",  # 120 n01980166
    "king crab, Alaska crab, Alaskan king crab, Alaska king crab, Paralithodes camtschatica",  # 121 n01981276
    "American lobster, Northern lobster, Maine lobster, Homarus americanus",  # 122 n01983481
    "spiny lobster, langouste, rock lobster, crawfish, crayfish, sea crawfish",  # 123 n01984695
    "crayfish, crawfish, crawdad, crawdaddy",  # 124 n01985128
    "hermit crab",  # 125 n01986214
    "isopod",  # 126 n01990800
    "white stork, Ciconia ciconia",  # 127 n02002556
    "black stork, Ciconia nigra",  # 128 n02002724
    "spoonbill",  # 129 n02006656
    "flamingo",  # 130 n02007558
    "little blue heron, Egretta caerulea",  # 131 n02009229
    "American egret, great white heron, Egretta albus",  # 132 n02009912
    "bittern",  # 133 n02011460
    "crane",  # 134 n02012849
    "limpkin, Aramus pictus",  # 135 n02013706
    "European gallinule, Porphyrio porphyrio",  # 136 n02017213
    "American coot, marsh hen, mud hen, water hen, Fulica americana",  # 137 n02018207
    "bustard",  # 138 n02018795
    "ruddy turnstone, Arenaria interpres",  # 139 n02025239
    "red-backed sandpiper, dunlin, Erolia alpina",  # 140 n02027492
    "redshank, Tringa totanus",  # 141 n02028035
    "dowitcher",  # 142 n02033041
    "oystercatcher, oyster catcher",  # 143 n02037110
    "pelican",  # 144 n02051845
    "king penguin, Aptenodytes patagonica",  # 145 n02056570
    "albatross, mollymawk",  # 146 n02058221
    "grey whale, gray whale, devilfish, Eschrichtius gibbosus, Eschrichtius robustus",  # 147 n02066245
    "killer whale, killer, orca, grampus, sea wolf, Orcinus orca",  # 148 n02071294
    "dugong, Dugong dugon",  # 149 n02074367
    "sea lion",  # 150 n02077923
    "Chihuahua",  # 151 n02085620
    "Japanese spaniel",  # 152 n02085782
    "Maltese dog, Maltese terrier, Maltese",  # 153 n02085936
    "Pekinese, Pekingese, Peke",  # 154 n02086079
    "Shih-Tzu",  # 155 n02086240
    "Blenheim spaniel",  # 156 n02086646
    "papillon",  # 157 n02086910
    "toy terrier",  # 158 n02087046
    "Rhodesian ridgeback",  # 159 n02087394
    "Afghan hound, Afghan",  # 160 n02088094
    "basset, basset hound",  # 161 n02088238
    "beagle",  # 162 n02088364
    "bloodhound, sleuthhound",  # 163 n02088466
    "bluetick",  # 164 n02088632
    "black-and-tan coonhound",  # 165 n02089078
    "Walker hound, Walker foxhound",  # 166 n02089867
    "English foxhound",  # 167 n02089973
    "redbone",  # 168 n02090379
    "borzoi, Russian wolfhound",  # 169 n02090622
    "Irish wolfhound",  # 170 n02090721
    "Italian greyhound",  # 171 n02091032
    "whippet",  # 172 n02091134
    "Ibizan hound, Ibizan Podenco",  # 173 n02091244
    "Norwegian elkhound, elkhound",  # 174 n02091467
    "otterhound, otter hound",  # 175 n02091635
    "Saluki, gazelle hound",  # 176 n02091831
    "Scottish deerhound, deerhound",  # 177 n02092002
    "Weimaraner",  # 178 n02092339
    "Staffordshire bullterrier, Staffordshire bull terrier",  # 179 n02093256
    "American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, pit bull terrier",  # 180 n02093428  # noqa: E501
    "Bedlington terrier",  # 181 n02093647
    "Border terrier",  # 182 n02093754
    "Kerry blue terrier",  # 183 n02093859
    "Irish terrier",  # 184 n02093991
    "Norfolk terrier",  # 185 n02094114
    "Norwich terrier",  # 186 n02094258
    "Yorkshire terrier",  # 187 n02094433
    "wire-haired fox terrier",  # 188 n02095314
    "Lakeland terrier",  # 189 n02095570
    "Sealyham terrier, Sealyham",  # 190 n02095889
    "Airedale, Airedale terrier",  # 191 n02096051
    "cairn, cairn terrier",  # 192 n02096177
    "Australian terrier",  # 193 n02096294
    "Dandie Dinmont, Dandie Dinmont terrier",  # 194 n02096437
    "Boston bull, Boston terrier",  # 195 n02096585
    "miniature schnauzer",  # 196 n02097047
    "giant schnauzer",  # 197 n02097130
    "standard schnauzer",  # 198 n02097209
    "Scotch terrier, Scottish terrier, Scottie",  # 199 n02097298
    "Tibetan terrier, chrysanthemum dog",  # 200 n02097474
    "silky terrier, Sydney silky",  # 201 n02097658
    "soft-coated wheaten terrier",  # 202 n02098105
    "West Highland white terrier",  # 203 n02098286
    "Lhasa, Lhasa apso",  # 204 n02098413
    "flat-coated retriever",  # 205 n02099267
    "curly-coated retriever",  # 206 n02099429
    "golden retriever",  # 207 n02099601
    "Labrador retriever",  # 208 n02099712
    "Chesapeake Bay retriever",  # 209 n02099849
    "German short-haired pointer",  # 210 n02100236
    "vizsla, Hungarian pointer",  # 211 n02100583
    "English setter",  # 212 n02100735
    "Irish setter, red setter",  # 213 n02100877
    "Gordon setter",  # 214 n02101006
    "Brittany spaniel",  # 215 n02101388
    "clumber, clumber spaniel",  # 216 n02101556
    "English springer, English springer spaniel",  # 217 n02102040
    "Welsh springer spaniel",  # 218 n02102177
    "cocker spaniel, English cocker spaniel, cocker",  # 219 n02102318
    "Sussex spaniel",  # 220 n02102480
    "Irish water spaniel",  # 221 n02102973
    "kuvasz",  # 222 n02104029
    "schipperke",  # 223 n02104365
    "groenendael",  # 224 n02105056
    "malinois",  # 225 n02105162
    "briard",  # 226 n02105251
    "kelpie",  # 227 n02105412
    "komondor",  # 228 n02105505
    "Old English sheepdog, bobtail",  # 229 n02105641
    "Shetland sheepdog, Shetland sheep dog, Shetland",  # 230 n02105855
    "collie",  # 231 n02106030
    "Border collie",  # 232 n02106166
    "Bouvier des Flandres, Bouviers des Flandres",  # 233 n02106382
    "Rottweiler",  # 234 n02106550
    "German shepherd, German shepherd dog, German police dog, alsatian",  # 235 n02106662
    "Doberman, Doberman pinscher",  # 236 n02107142
    "miniature pinscher",  # 237 n02107312
    "Greater Swiss Mountain dog",  # 238 n02107574
    "Bernese mountain dog",  # 239 n02107683
    "Appenzeller",  # 240 n02107908
    "EntleBucher",  # 241 n02108000
    "boxer",  # 242 n02108089
    "bull mastiff",  # 243 n02108422
    "Tibetan mastiff",  # 244 n02108551
    "French bulldog",  # 245 n02108915
    "Great Dane",  # 246 n02109047
    "Saint Bernard, St Bernard",  # 247 n02109525
    "Eskimo dog, husky",  # 248 n02109961
    "malamute, malemute, Alaskan malamute",  # 249 n02110063
    "Siberian husky",  # 250 n02110185
    "dalmatian, coach dog, carriage dog",  # 251 n02110341
    "affenpinscher, monkey pinscher, monkey dog",  # 252 n02110627
    "basenji",  # 253 n02110806
    "pug, pug-dog",  # 254 n02110958
    "Leonberg",  # 255 n02111129
    "Newfoundland, Newfoundland dog",  # 256 n02111277
    "Great Pyrenees",  # 257 n02111500
    "Samoyed, Samoyede",  # 258 n02111889
    "Pomeranian",  # 259 n02112018
    "chow, chow chow",  # 260 n02112137
    "keeshond",  # 261 n02112350
    "Brabancon griffon",  # 262 n02112706
    "Pembroke, Pembroke Welsh corgi",  # 263 n02113023
    "Cardigan, Cardigan Welsh corgi",  # 264 n02113186
    "toy poodle",  # 265 n02113624
    "miniature poodle",  # 266 n02113712
    "standard poodle",  # 267 n02113799
    "Mexican hairless",  # 268 n02113978
    "timber wolf, grey wolf, gray wolf, Canis lupus",  # 269 n02114367
    "white wolf, Arctic wolf, Canis lupus tundrarum",  # 270 n02114548
    "red wolf, maned wolf, Canis rufus, Canis niger",  # 271 n02114712
    "coyote, prairie wolf, brush wolf, Canis latrans",  # 272 n02114855
    "dingo, warrigal, warragal, Canis dingo",  # 273 n02115641
    "dhole, Cuon alpinus",  # 274 n02115913
    "African hunting dog, hyena dog, Cape hunting dog, Lycaon pictus",  # 275 n02116738
    "hyena, hyaena",  # 276 n02117135
    "red fox, Vulpes vulpes",  # 277 n02119022
    "kit fox, Vulpes macrotis",  # 278 n02119789
    "Arctic fox, white fox, Alopex lagopus",  # 279 n02120079
    "grey fox, gray fox, Urocyon cinereoargenteus",  # 280 n02120505
    "tabby, tabby cat",  # 281 n02123045
    "tiger cat",  # 282 n02123159
    "Persian cat",  # 283 n02123394
    "Siamese cat, Siamese",  # 284 n02123597
    "Egyptian cat",  # 285 n02124075
    "cougar, puma, catamount, mountain lion, painter, panther, Felis concolor",  # 286 n02125311
    "lynx, catamount",  # 287 n02127052
    "leopard, Panthera pardus",  # 288 n02128385
    "snow leopard, ounce, Panthera uncia",  # 289 n02128757
    "jaguar, panther, Panthera onca, Felis onca",  # 290 n02128925
    "lion, king of beasts, Panthera leo",  # 291 n02129165
    "tiger, Panthera tigris",  # 292 n02129604
    "cheetah, chetah, Acinonyx jubatus",  # 293 n02130308
    "brown bear, bruin, Ursus arctos",  # 294 n02132136
    "American black bear, black bear, Ursus americanus, Euarctos americanus",  # 295 n02133161
    "ice bear, polar bear, Ursus Maritimus, Thalarctos maritimus",  # 296 n02134084
    "sloth bear, Melursus ursinus, Ursus ursinus",  # 297 n02134418
    "mongoose",  # 298 n02137549
    "meerkat, mierkat",  # 299 n02138441
    "tiger beetle",  # 300 n02165105
    "ladybug, ladybeetle, lady beetle, ladybird, ladybird beetle",  # 301 n02165456
    "ground beetle, carabid beetle",  # 302 n02167151
    "long-horned beetle, longicorn, longicorn beetle",  # 303 n02168699
    "leaf beetle, chrysomelid",  # 304 n02169497
    "dung beetle",  # 305 n02172182
    "rhinoceros beetle",  # 306 n02174001
    "weevil",  # 307 n02177972
    "fly",  # 308 n02190166
    "bee",  # 309 n02206856
    "ant, emmet, pismire",  # 310 n02219486
    "grasshopper, hopper",  # 311 n02226429
    "cricket",  # 312 n02229544
    "walking stick, walkingstick, stick insect",  # 313 n02231487
    "cockroach, roach",  # 314 n02233338
    "mantis, mantid",  # 315 n02236044
    "cicada, cicala",  # 316 n02256656
    "leafhopper",  # 317 n02259212
    "lacewing, lacewing fly",  # 318 n02264363
    "dragonfly, darning needle, devil's darning needle, sewing needle, snake feeder, snake doctor, mosquito hawk, skeeter hawk",  # 319 n02268443  # noqa: E501
    "damselfly",  # 320 n02268853
    "admiral",  # 321 n02276258
    "ringlet, ringlet butterfly",  # 322 n02277742
    "monarch, monarch butterfly, milkweed butterfly, Danaus plexippus",  # 323 n02279972
    "cabbage butterfly",  # 324 n02280649
    "sulphur butterfly, sulfur butterfly",  # 325 n02281406
    "lycaenid, lycaenid butterfly",  # 326 n02281787
    "starfish, sea star",  # 327 n02317335
    "sea urchin",  # 328 n02319095
    "sea cucumber, holothurian",  # 329 n02321529
    "wood rabbit, cottontail, cottontail rabbit",  # 330 n02325366
    "hare",  # 331 n02326432
    "Angora, Angora rabbit",  # 332 n02328150
    "hamster",  # 333 n02342885
    "porcupine, hedgehog",  # 334 n02346627
    "fox squirrel, eastern fox squirrel, Sciurus niger",  # 335 n02356798
    "marmot",  # 336 n02361337
    "beaver",  # 337 n02363005
    "guinea pig, Cavia cobaya",  # 338 n02364673
    "sorrel",  # 339 n02389026
    "zebra",  # 340 n02391049
    "hog, pig, grunter, squealer, Sus scrofa",  # 341 n02395406
    "wild boar, boar, Sus scrofa",  # 342 n02396427
    "warthog",  # 343 n02397096
    "hippopotamus, hippo, river horse, Hippopotamus amphibius",  # 344 n02398521
    "ox",  # 345 n02403003
    "water buffalo, water ox, Asiatic buffalo, Bubalus bubalis",  # 346 n02408429
    "bison",  # 347 n02410509
    "ram, tup",  # 348 n02412080
    "bighorn, bighorn sheep, cimarron, Rocky Mountain bighorn, Rocky Mountain sheep, Ovis canadensis",  # 349 n02415577
    "ibex, Capra ibex",  # 350 n02417914
    "hartebeest",  # 351 n02422106
    "impala, Aepyceros melampus",  # 352 n02422699
    "gazelle",  # 353 n02423022
    "Arabian camel, dromedary, Camelus dromedarius",  # 354 n02437312
    "llama",  # 355 n02437616
    "weasel",  # 356 n02441942
    "mink",  # 357 n02442845
    "polecat, fitch, foulmart, foumart, Mustela putorius",  # 358 n02443114
    "black-footed ferret, ferret, Mustela nigripes",  # 359 n02443484
    "otter",  # 360 n02444819
    "skunk, polecat, wood pussy",  # 361 n02445715
    "badger",  # 362 n02447366
    "armadillo",  # 363 n02454379
    "three-toed sloth, ai, Bradypus tridactylus",  # 364 n02457408
    "orangutan, orang, orangutang, Pongo pygmaeus",  # 365 n02480495
    "gorilla, Gorilla gorilla",  # 366 n02480855
    "chimpanzee, chimp, Pan troglodytes",  # 367 n02481823
    "gibbon, Hylobates lar",  # 368 n02483362
    "siamang, Hylobates syndactylus, Symphalangus syndactylus",  # 369 n02483708
    "guenon, guenon monkey",  # 370 n02484975
    "patas, hussar monkey, Erythrocebus patas",  # 371 n02486261
    "baboon",  # 372 n02486410
    "macaque",  # 373 n02487347
    "langur",  # 374 n02488291
    "colobus, colobus monkey",  # 375 n02488702
    "proboscis monkey, Nasalis larvatus",  # 376 n02489166
    "marmoset",  # 377 n02490219
    "capuchin, ringtail, Cebus capucinus",  # 378 n02492035
    "howler monkey, howler",  # 379 n02492660
    "titi, titi monkey",  # 380 n02493509
    "spider monkey, Ateles geoffroyi",  # 381 n02493793
    "squirrel monkey, Saimiri sciureus",  # 382 n02494079
    "Madagascar cat, ring-tailed lemur, Lemur catta",  # 383 n02497673
    "indri, indris, Indri indri, Indri brevicaudatus",  # 384 n02500267
    "Indian elephant, Elephas maximus",  # 385 n02504013
    "African elephant, Loxodonta africana",  # 386 n02504458
    "lesser panda, red panda, panda, bear cat, cat bear, Ailurus fulgens",  # 387 n02509815
    "giant panda, panda, panda bear, coon bear, Ailuropoda melanoleuca",  # 388 n02510455
    "barracouta, snoek",  # 389 n02514041
    "eel",  # 390 n02526121
    "coho, cohoe, coho salmon, blue jack, silver salmon, Oncorhynchus kisutch",  # 391 n02536864
    "rock beauty, Holocanthus tricolor",  # 392 n02606052
    "anemone fish",  # 393 n02607072
    "sturgeon",  # 394 n02640242
    "gar, garfish, garpike, billfish, Lepisosteus osseus",  # 395 n02641379
    "lionfish",  # 396 n02643566
    "puffer, pufferfish, blowfish, globefish",  # 397 n02655020
    "abacus",  # 398 n02666196
    "abaya",  # 399 n02667093
    "academic gown, academic robe, judge's robe",  # 400 n02669723
    "accordion, piano accordion, squeeze box",  # 401 n02672831
    "acoustic guitar",  # 402 n02676566
    "aircraft carrier, carrier, flattop, attack aircraft carrier",  # 403 n02687172
    "airliner",  # 404 n02690373
    "airship, dirigible",  # 405 n02692877
    "altar",  # 406 n02699494
    "ambulance",  # 407 n02701002
    "amphibian, amphibious vehicle",  # 408 n02704792
    "analog clock",  # 409 n02708093
    "apiary, bee house",  # 410 n02727426
    "apron",  # 411 n02730930
    "ashcan, trash can, garbage can, wastebin, ash bin, ash-bin, ashbin, dustbin, trash barrel, trash bin",  # 412 n02747177  # noqa: E501
    "assault rifle, assault gun",  # 413 n02749479
    "backpack, back pack, knapsack, packsack, rucksack, haversack",  # 414 n02769748
    "bakery, bakeshop, bakehouse",  # 415 n02776631
    "balance beam, beam",  # 416 n02777292
    "balloon",  # 417 n02782093
    "ballpoint, ballpoint pen, ballpen, Biro",  # 418 n02783161
    "Band Aid",  # 419 n02786058
    "banjo",  # 420 n02787622
    "bannister, banister, balustrade, balusters, handrail",  # 421 n02788148
    "barbell",  # 422 n02790996
    "barber chair",  # 423 n02791124
    "barbershop",  # 424 n02791270
    "barn",  # 425 n02793495
    "barometer",  # 426 n02794156
    "barrel, cask",  # 427 n02795169
    "barrow, garden cart, lawn cart, wheelbarrow",  # 428 n02797295
    "baseball",  # 429 n02799071
    "basketball",  # 430 n02802426
    "bassinet",  # 431 n02804414
    "bassoon",  # 432 n02804610
    "bathing cap, swimming cap",  # 433 n02807133
    "bath towel",  # 434 n02808304
    "bathtub, bathing tub, bath, tub",  # 435 n02808440
    "beach wagon, station wagon, wagon, estate car, beach waggon, station waggon, waggon",  # 436 n02814533
    "beacon, lighthouse, beacon light, pharos",  # 437 n02814860
    "beaker",  # 438 n02815834
    "bearskin, busby, shako",  # 439 n02817516
    "beer bottle",  # 440 n02823428
    "beer glass",  # 441 n02823750
    "bell cote, bell cot",  # 442 n02825657
    "bib",  # 443 n02834397
    "bicycle-built-for-two, tandem bicycle, tandem",  # 444 n02835271
    "bikini, two-piece",  # 445 n02837789
    "binder, ring-binder",  # 446 n02840245
    "binoculars, field glasses, opera glasses",  # 447 n02841315
    "birdhouse",  # 448 n02843684
    "boathouse",  # 449 n02859443
    "bobsled, bobsleigh, bob",  # 450 n02860847
    "bolo tie, bolo, bola tie, bola",  # 451 n02865351
    "bonnet, poke bonnet",  # 452 n02869837
    "bookcase",  # 453 n02870880
    "bookshop, bookstore, bookstall",  # 454 n02871525
    "bottlecap",  # 455 n02877765
    "bow",  # 456 n02879718
    "bow tie, bow-tie, bowtie",  # 457 n02883205
    "brass, memorial tablet, plaque",  # 458 n02892201
    "brassiere, bra, bandeau",  # 459 n02892767
    "breakwater, groin, groyne, mole, bulwark, seawall, jetty",  # 460 n02894605
    "breastplate, aegis, egis",  # 461 n02895154
    "broom",  # 462 n02906734
    "bucket, pail",  # 463 n02909870
    "buckle",  # 464 n02910353
    "bulletproof vest",  # 465 n02916936
    "bullet train, bullet",  # 466 n02917067
    "butcher shop, meat market",  # 467 n02927161
    "cab, hack, taxi, taxicab",  # 468 n02930766
    "caldron, cauldron",  # 469 n02939185
    "candle, taper, wax light",  # 470 n02948072
    "cannon",  # 471 n02950826
    "canoe",  # 472 n02951358
    "can opener, tin opener",  # 473 n02951585
    "cardigan",  # 474 n02963159
    "car mirror",  # 475 n02965783
    "carousel, carrousel, merry-go-round, roundabout, whirligig",  # 476 n02966193
    "carpenter's kit, tool kit",  # 477 n02966687
    "carton",  # 478 n02971356
    "car wheel",  # 479 n02974003
    "cash machine, cash dispenser, automated teller machine, automatic teller machine, automated teller, automatic teller, ATM",  # 480 n02977058  # noqa: E501
    "cassette",  # 481 n02978881
    "cassette player",  # 482 n02979186
    "castle",  # 483 n02980441
    "catamaran",  # 484 n02981792
    "CD player",  # 485 n02988304
    "cello, violoncello",  # 486 n02992211
    "cellular telephone, cellular phone, cellphone, cell, mobile phone",  # 487 n02992529
    "chain",  # 488 n02999410
    "chainlink fence",  # 489 n03000134
    "chain mail, ring mail, mail, chain armor, chain armour, ring armor, ring armour",  # 490 n03000247
    "chain saw, chainsaw",  # 491 n03000684
    "chest",  # 492 n03014705
    "chiffonier, commode",  # 493 n03016953
    "chime, bell, gong",  # 494 n03017168
    "china cabinet, china closet",  # 495 n03018349
    "Christmas stocking",  # 496 n03026506
    "church, church building",  # 497 n03028079
    "cinema, movie theater, movie theatre, movie house, picture palace",  # 498 n03032252
    "cleaver, meat cleaver, chopper",  # 499 n03041632
    "cliff dwelling",  # 500 n03042490
    "cloak",  # 501 n03045698
    "clog, geta, patten, sabot",  # 502 n03047690
    "cocktail shaker",  # 503 n03062245
    "coffee mug",  # 504 n03063599
    "coffeepot",  # 505 n03063689
    "coil, spiral, volute, whorl, helix",  # 506 n03065424
    "combination lock",  # 507 n03075370
    "computer keyboard, keypad",  # 508 n03085013
    "confectionery, confectionary, candy store",  # 509 n03089624
    "container ship, containership, container vessel",  # 510 n03095699
    "convertible",  # 511 n03100240
    "corkscrew, bottle screw",  # 512 n03109150
    "cornet, horn, trumpet, trump",  # 513 n03110669
    "cowboy boot",  # 514 n03124043
    "cowboy hat, ten-gallon hat",  # 515 n03124170
    "cradle",  # 516 n03125729
    "crane",  # 517 n03126707
    "crash helmet",  # 518 n03127747
    "crate",  # 519 n03127925
    "crib, cot",  # 520 n03131574
    "Crock Pot",  # 521 n03133878
    "croquet ball",  # 522 n03134739
    "crutch",  # 523 n03141823
    "cuirass",  # 524 n03146219
    "dam, dike, dyke",  # 525 n03160309
    "desk",  # 526 n03179701
    "desktop computer",  # 527 n03180011
    "dial telephone, dial phone",  # 528 n03187595
    "diaper, nappy, napkin",  # 529 n03188531
    "digital clock",  # 530 n03196217
    "digital watch",  # 531 n03197337
    "dining table, board",  # 532 n03201208
    "dishrag, dishcloth",  # 533 n03207743
    "dishwasher, dish washer, dishwashing machine",  # 534 n03207941
    "disk brake, disc brake",  # 535 n03208938
    "dock, dockage, docking facility",  # 536 n03216828
    "dogsled, dog sled, dog sleigh",  # 537 n03218198
    "dome",  # 538 n03220513
    "doormat, welcome mat",  # 539 n03223299
    "drilling platform, offshore rig",  # 540 n03240683
    "drum, membranophone, tympan",  # 541 n03249569
    "drumstick",  # 542 n03250847
    "dumbbell",  # 543 n03255030
    "Dutch oven",  # 544 n03259280
    "electric fan, blower",  # 545 n03271574
    "electric guitar",  # 546 n03272010
    "electric locomotive",  # 547 n03272562
    "entertainment center",  # 548 n03290653
    "envelope",  # 549 n03291819
    "espresso maker",  # 550 n03297495
    "face powder",  # 551 n03314780
    "feather boa, boa",  # 552 n03325584
    "file, file cabinet, filing cabinet",  # 553 n03337140
    "fireboat",  # 554 n03344393
    "fire engine, fire truck",  # 555 n03345487
    "fire screen, fireguard",  # 556 n03347037
    "flagpole, flagstaff",  # 557 n03355925
    "flute, transverse flute",  # 558 n03372029
    "folding chair",  # 559 n03376595
    "football helmet",  # 560 n03379051
    "forklift",  # 561 n03384352
    "fountain",  # 562 n03388043
    "fountain pen",  # 563 n03388183
    "four-poster",  # 564 n03388549
    "freight car",  # 565 n03393912
    "French horn, horn",  # 566 n03394916
    "frying pan, frypan, skillet",  # 567 n03400231
    "fur coat",  # 568 n03404251
    "garbage truck, dustcart",  # 569 n03417042
    "gasmask, respirator, gas helmet",  # 570 n03424325
    "gas pump, gasoline pump, petrol pump, island dispenser",  # 571 n03425413
    "goblet",  # 572 n03443371
    "go-kart",  # 573 n03444034
    "golf ball",  # 574 n03445777
    "golfcart, golf cart",  # 575 n03445924
    "gondola",  # 576 n03447447
    "gong, tam-tam",  # 577 n03447721
    "gown",  # 578 n03450230
    "grand piano, grand",  # 579 n03452741
    "greenhouse, nursery, glasshouse",  # 580 n03457902
    "grille, radiator grille",  # 581 n03459775
    "grocery store, grocery, food market, market",  # 582 n03461385
    "guillotine",  # 583 n03467068
    "hair slide",  # 584 n03476684
    "hair spray",  # 585 n03476991
    "half track",  # 586 n03478589
    "hammer",  # 587 n03481172
    "hamper",  # 588 n03482405
    "hand blower, blow dryer, blow drier, hair dryer, hair drier",  # 589 n03483316
    "hand-held computer, hand-held microcomputer",  # 590 n03485407
    "handkerchief, hankie, hanky, hankey",  # 591 n03485794
    "hard disc, hard disk, fixed disk",  # 592 n03492542
    "harmonica, mouth organ, harp, mouth harp",  # 593 n03494278
    "harp",  # 594 n03495258
    "harvester, reaper",  # 595 n03496892
    "hatchet",  # 596 n03498962
    "holster",  # 597 n03527444
    "home theater, home theatre",  # 598 n03529860
    "honeycomb",  # 599 n03530642
    "hook, claw",  # 600 n03532672
    "hoopskirt, crinoline",  # 601 n03534580
    "horizontal bar, high bar",  # 602 n03535780
    "horse cart, horse-cart",  # 603 n03538406
    "hourglass",  # 604 n03544143
    "iPod",  # 605 n03584254
    "iron, smoothing iron",  # 606 n03584829
    "jack-o'-lantern",  # 607 n03590841
    "jean, blue jean, denim",  # 608 n03594734
    "jeep, landrover",  # 609 n03594945
    "jersey, T-shirt, tee shirt",  # 610 n03595614
    "jigsaw puzzle",  # 611 n03598930
    "jinrikisha, ricksha, rickshaw",  # 612 n03599486
    "joystick",  # 613 n03602883
    "kimono",  # 614 n03617480
    "knee pad",  # 615 n03623198
    "knot",  # 616 n03627232
    "lab coat, laboratory coat",  # 617 n03630383
    "ladle",  # 618 n03633091
    "lampshade, lamp shade",  # 619 n03637318
    "laptop, laptop computer",  # 620 n03642806
    "lawn mower, mower",  # 621 n03649909
    "lens cap, lens cover",  # 622 n03657121
    "letter opener, paper knife, paperknife",  # 623 n03658185
    "library",  # 624 n03661043
    "lifeboat",  # 625 n03662601
    "lighter, light, igniter, ignitor",  # 626 n03666591
    "limousine, limo",  # 627 n03670208
    "liner, ocean liner",  # 628 n03673027
    "lipstick, lip rouge",  # 629 n03676483
    "Loafer",  # 630 n03680355
    "lotion",  # 631 n03690938
    "loudspeaker, speaker, speaker unit, loudspeaker system, speaker system",  # 632 n03691459
    "loupe, jeweler's loupe",  # 633 n03692522
    "lumbermill, sawmill",  # 634 n03697007
    "magnetic compass",  # 635 n03706229
    "mailbag, postbag",  # 636 n03709823
    "mailbox, letter box",  # 637 n03710193
    "maillot",  # 638 n03710637
    "maillot, tank suit",  # 639 n03710721
    "manhole cover",  # 640 n03717622
    "maraca",  # 641 n03720891
    "marimba, xylophone",  # 642 n03721384
    "mask",  # 643 n03724870
    "matchstick",  # 644 n03729826
    "maypole",  # 645 n03733131
    "maze, labyrinth",  # 646 n03733281
    "measuring cup",  # 647 n03733805
    "medicine chest, medicine cabinet",  # 648 n03742115
    "megalith, megalithic structure",  # 649 n03743016
    "microphone, mike",  # 650 n03759954
    "microwave, microwave oven",  # 651 n03761084
    "military uniform",  # 652 n03763968
    "milk can",  # 653 n03764736
    "minibus",  # 654 n03769881
    "miniskirt, mini",  # 655 n03770439
    "minivan",  # 656 n03770679
    "missile",  # 657 n03773504
    "mitten",  # 658 n03775071
    "mixing bowl",  # 659 n03775546
    "mobile home, manufactured home",  # 660 n03776460
    "Model T",  # 661 n03777568
    "modem",  # 662 n03777754
    "monastery",  # 663 n03781244
    "monitor",  # 664 n03782006
    "moped",  # 665 n03785016
    "mortar",  # 666 n03786901
    "mortarboard",  # 667 n03787032
    "mosque",  # 668 n03788195
    "mosquito net",  # 669 n03788365
    "motor scooter, scooter",  # 670 n03791053
    "mountain bike, all-terrain bike, off-roader",  # 671 n03792782
    "mountain tent",  # 672 n03792972
    "mouse, computer mouse",  # 673 n03793489
    "mousetrap",  # 674 n03794056
    "moving van",  # 675 n03796401
    "muzzle",  # 676 n03803284
    "nail",  # 677 n03804744
    "neck brace",  # 678 n03814639
    "necklace",  # 679 n03814906
    "nipple",  # 680 n03825788
    "notebook, notebook computer",  # 681 n03832673
    "obelisk",  # 682 n03837869
    "oboe, hautboy, hautbois",  # 683 n03838899
    "ocarina, sweet potato",  # 684 n03840681
    "odometer, hodometer, mileometer, milometer",  # 685 n03841143
    "oil filter",  # 686 n03843555
    "organ, pipe organ",  # 687 n03854065
    "oscilloscope, scope, cathode-ray oscilloscope, CRO",  # 688 n03857828
    "overskirt",  # 689 n03866082
    "oxcart",  # 690 n03868242
    "oxygen mask",  # 691 n03868863
    "packet",  # 692 n03871628
    "paddle, boat paddle",  # 693 n03873416
    "paddlewheel, paddle wheel",  # 694 n03874293
    "padlock",  # 695 n03874599
    "paintbrush",  # 696 n03876231
    "pajama, pyjama, pj's, jammies",  # 697 n03877472
    "palace",  # 698 n03877845
    "panpipe, pandean pipe, syrinx",  # 699 n03884397
    "paper towel",  # 700 n03887697
    "parachute, chute",  # 701 n03888257
    "parallel bars, bars",  # 702 n03888605
    "park bench",  # 703 n03891251
    "parking meter",  # 704 n03891332
    "passenger car, coach, carriage",  # 705 n03895866
    "patio, terrace",  # 706 n03899768
    "pay-phone, pay-station",  # 707 n03902125
    "pedestal, plinth, footstall",  # 708 n03903868
    "pencil box, pencil case",  # 709 n03908618
    "pencil sharpener",  # 710 n03908714
    "perfume, essence",  # 711 n03916031
    "Petri dish",  # 712 n03920288
    "photocopier",  # 713 n03924679
    "pick, plectrum, plectron",  # 714 n03929660
    "pickelhaube",  # 715 n03929855
    "picket fence, paling",  # 716 n03930313
    "pickup, pickup truck",  # 717 n03930630
    "pier",  # 718 n03933933
    "piggy bank, penny bank",  # 719 n03935335
    "pill bottle",  # 720 n03937543
    "pillow",  # 721 n03938244
    "ping-pong ball",  # 722 n03942813
    "pinwheel",  # 723 n03944341
    "pirate, pirate ship",  # 724 n03947888
    "pitcher, ewer",  # 725 n03950228
    "plane, carpenter's plane, woodworking plane",  # 726 n03954731
    "planetarium",  # 727 n03956157
    "plastic bag",  # 728 n03958227
    "plate rack",  # 729 n03961711
    "plow, plough",  # 730 n03967562
    "plunger, plumber's helper",  # 731 n03970156
    "Polaroid camera, Polaroid Land camera",  # 732 n03976467
    "pole",  # 733 n03976657
    "police van, police wagon, paddy wagon, patrol wagon, wagon, black Maria",  # 734 n03977966
    "poncho",  # 735 n03980874
    "pool table, billiard table, snooker table",  # 736 n03982430
    "pop bottle, soda bottle",  # 737 n03983396
    "pot, flowerpot",  # 738 n03991062
    "potter's wheel",  # 739 n03992509
    "power drill",  # 740 n03995372
    "prayer rug, prayer mat",  # 741 n03998194
    "printer",  # 742 n04004767
    "prison, prison house",  # 743 n04005630
    "projectile, missile",  # 744 n04008634
    "projector",  # 745 n04009552
    "puck, hockey puck",  # 746 n04019541
    "punching bag, punch bag, punching ball, punchball",  # 747 n04023962
    "purse",  # 748 n04026417
    "quill, quill pen",  # 749 n04033901
    "quilt, comforter, comfort, puff",  # 750 n04033995
    "racer, race car, racing car",  # 751 n04037443
    "racket, racquet",  # 752 n04039381
    "radiator",  # 753 n04040759
    "radio, wireless",  # 754 n04041544
    "radio telescope, radio reflector",  # 755 n04044716
    "rain barrel",  # 756 n04049303
    "recreational vehicle, RV, R.V.",  # 757 n04065272
    "reel",  # 758 n04067472
    "reflex camera",  # 759 n04069434
    "refrigerator, icebox",  # 760 n04070727
    "remote control, remote",  # 761 n04074963
    "restaurant, eating house, eating place, eatery",  # 762 n04081281
    "revolver, six-gun, six-shooter",  # 763 n04086273
    "rifle",  # 764 n04090263
    "rocking chair, rocker",  # 765 n04099969
    "rotisserie",  # 766 n04111531
    "rubber eraser, rubber, pencil eraser",  # 767 n04116512
    "rugby ball",  # 768 n04118538
    "rule, ruler",  # 769 n04118776
    "running shoe",  # 770 n04120489
    "safe",  # 771 n04125021
    "safety pin",  # 772 n04127249
    "saltshaker, salt shaker",  # 773 n04131690
    "sandal",  # 774 n04133789
    "sarong",  # 775 n04136333
    "sax, saxophone",  # 776 n04141076
    "scabbard",  # 777 n04141327
    "scale, weighing machine",  # 778 n04141975
    "school bus",  # 779 n04146614
    "schooner",  # 780 n04147183
    "scoreboard",  # 781 n04149813
    "screen, CRT screen",  # 782 n04152593
    "screw",  # 783 n04153751
    "screwdriver",  # 784 n04154565
    "seat belt, seatbelt",  # 785 n04162706
    "sewing machine",  # 786 n04179913
    "shield, buckler",  # 787 n04192698
    "shoe shop, shoe-shop, shoe store",  # 788 n04200800
    "shoji",  # 789 n04201297
    "shopping basket",  # 790 n04204238
    "shopping cart",  # 791 n04204347
    "shovel",  # 792 n04208210
    "shower cap",  # 793 n04209133
    "shower curtain",  # 794 n04209239
    "ski",  # 795 n04228054
    "ski mask",  # 796 n04229816
    "sleeping bag",  # 797 n04235860
    "slide rule, slipstick",  # 798 n04238763
    "sliding door",  # 799 n04239074
    "slot, one-armed bandit",  # 800 n04243546
    "snorkel",  # 801 n04251144
    "snowmobile",  # 802 n04252077
    "snowplow, snowplough",  # 803 n04252225
    "soap dispenser",  # 804 n04254120
    "soccer ball",  # 805 n04254680
    "sock",  # 806 n04254777
    "solar dish, solar collector, solar furnace",  # 807 n04258138
    "sombrero",  # 808 n04259630
    "soup bowl",  # 809 n04263257
    "space bar",  # 810 n04264628
    "space heater",  # 811 n04265275
    "space shuttle",  # 812 n04266014
    "spatula",  # 813 n04270147
    "speedboat",  # 814 n04273569
    "spider web, spider's web",  # 815 n04275548
    "spindle",  # 816 n04277352
    "sports car, sport car",  # 817 n04285008
    "spotlight, spot",  # 818 n04286575
    "stage",  # 819 n04296562
    "steam locomotive",  # 820 n04310018
    "steel arch bridge",  # 821 n04311004
    "steel drum",  # 822 n04311174
    "stethoscope",  # 823 n04317175
    "stole",  # 824 n04325704
    "stone wall",  # 825 n04326547
    "stopwatch, stop watch",  # 826 n04328186
    "stove",  # 827 n04330267
    "strainer",  # 828 n04332243
    "streetcar, tram, tramcar, trolley, trolley car",  # 829 n04335435
    "stretcher",  # 830 n04336792
    "studio couch, day bed",  # 831 n04344873
    "stupa, tope",  # 832 n04346328
    "submarine, pigboat, sub, U-boat",  # 833 n04347754
    "suit, suit of clothes",  # 834 n04350905
    "sundial",  # 835 n04355338
    "sunglass",  # 836 n04355933
    "sunglasses, dark glasses, shades",  # 837 n04356056
    "sunscreen, sunblock, sun blocker",  # 838 n04357314
    "suspension bridge",  # 839 n04366367
    "swab, swob, mop",  # 840 n04367480
    "sweatshirt",  # 841 n04370456
    "swimming trunks, bathing trunks",  # 842 n04371430
    "swing",  # 843 n04371774
    "switch, electric switch, electrical switch",  # 844 n04372370
    "syringe",  # 845 n04376876
    "table lamp",  # 846 n04380533
    "tank, army tank, armored combat vehicle, armoured combat vehicle",  # 847 n04389033
    "tape player",  # 848 n04392985
    "teapot",  # 849 n04398044
    "teddy, teddy bear",  # 850 n04399382
    "television, television system",  # 851 n04404412
    "tennis ball",  # 852 n04409515
    "thatch, thatched roof",  # 853 n04417672
    "theater curtain, theatre curtain",  # 854 n04418357
    "thimble",  # 855 n04423845
    "thresher, thrasher, threshing machine",  # 856 n04428191
    "throne",  # 857 n04429376
    "tile roof",  # 858 n04435653
    "toaster",  # 859 n04442312
    "tobacco shop, tobacconist shop, tobacconist",  # 860 n04443257
    "toilet seat",  # 861 n04447861
    "torch",  # 862 n04456115
    "totem pole",  # 863 n04458633
    "tow truck, tow car, wrecker",  # 864 n04461696
    "toyshop",  # 865 n04462240
    "tractor",  # 866 n04465501
    "trailer truck, tractor trailer, trucking rig, rig, articulated lorry, semi",  # 867 n04467665
    "tray",  # 868 n04476259
    "trench coat",  # 869 n04479046
    "tricycle, trike, velocipede",  # 870 n04482393
    "trimaran",  # 871 n04483307
    "tripod",  # 872 n04485082
    "triumphal arch",  # 873 n04486054
    "trolleybus, trolley coach, trackless trolley",  # 874 n04487081
    "trombone",  # 875 n04487394
    "tub, vat",  # 876 n04493381
    "turnstile",  # 877 n04501370
    "typewriter keyboard",  # 878 n04505470
    "umbrella",  # 879 n04507155
    "unicycle, monocycle",  # 880 n04509417
    "upright, upright piano",  # 881 n04515003
    "vacuum, vacuum cleaner",  # 882 n04517823
    "vase",  # 883 n04522168
    "vault",  # 884 n04523525
    "velvet",  # 885 n04525038
    "vending machine",  # 886 n04525305
    "vestment",  # 887 n04532106
    "viaduct",  # 888 n04532670
    "violin, fiddle",  # 889 n04536866
    "volleyball",  # 890 n04540053
    "waffle iron",  # 891 n04542943
    "wall clock",  # 892 n04548280
    "wallet, billfold, notecase, pocketbook",  # 893 n04548362
    "wardrobe, closet, press",  # 894 n04550184
    "warplane, military plane",  # 895 n04552348
    "washbasin, handbasin, washbowl, lavabo, wash-hand basin",  # 896 n04553703
    "washer, automatic washer, washing machine",  # 897 n04554684
    "water bottle",  # 898 n04557648
    "water jug",  # 899 n04560804
    "water tower",  # 900 n04562935
    "whiskey jug",  # 901 n04579145
    "whistle",  # 902 n04579432
    "wig",  # 903 n04584207
    "window screen",  # 904 n04589890
    "window shade",  # 905 n04590129
    "Windsor tie",  # 906 n04591157
    "wine bottle",  # 907 n04591713
    "wing",  # 908 n04592741
    "wok",  # 909 n04596742
    "wooden spoon",  # 910 n04597913
    "wool, woolen, woollen",  # 911 n04599235
    "worm fence, snake fence, snake-rail fence, Virginia fence",  # 912 n04604644
    "wreck",  # 913 n04606251
    "yawl",  # 914 n04612504
    "yurt",  # 915 n04613696
    "web site, website, internet site, site",  # 916 n06359193
    "comic book",  # 917 n06596364
    "crossword puzzle, crossword",  # 918 n06785654
    "street sign",  # 919 n06794110
    "traffic light, traffic signal, stoplight",  # 920 n06874185
    "book jacket, dust cover, dust jacket, dust wrapper",  # 921 n07248320
    "menu",  # 922 n07565083
    "plate",  # 923 n07579787
    "guacamole",  # 924 n07583066
    "consomme",  # 925 n07584110
    "hot pot, hotpot",  # 926 n07590611
    "trifle",  # 927 n07613480
    "ice cream, icecream",  # 928 n07614500
    "ice lolly, lolly, lollipop, popsicle",  # 929 n07615774
    "French loaf",  # 930 n07684084
    "bagel, beigel",  # 931 n07693725
    "pretzel",  # 932 n07695742
    "cheeseburger",  # 933 n07697313
    "hotdog, hot dog, red hot",  # 934 n07697537
    "mashed potato",  # 935 n07711569
    "head cabbage",  # 936 n07714571
    "broccoli",  # 937 n07714990
    "cauliflower",  # 938 n07715103
    "zucchini, courgette",  # 939 n07716358
    "spaghetti squash",  # 940 n07716906
    "acorn squash",  # 941 n07717410
    "butternut squash",  # 942 n07717556
    "cucumber, cuke",  # 943 n07718472
    "artichoke, globe artichoke",  # 944 n07718747
    "bell pepper",  # 945 n07720875
    "cardoon",  # 946 n07730033
    "mushroom",  # 947 n07734744
    "Granny Smith",  # 948 n07742313
    "strawberry",  # 949 n07745940
    "orange",  # 950 n07747607
    "lemon",  # 951 n07749582
    "fig",  # 952 n07753113
    "pineapple, ananas",  # 953 n07753275
    "banana",  # 954 n07753592
    "jackfruit, jak, jack",  # 955 n07754684
    "custard apple",  # 956 n07760859
    "pomegranate",  # 957 n07768694
    "hay",  # 958 n07802026
    "carbonara",  # 959 n07831146
    "chocolate sauce, chocolate syrup",  # 960 n07836838
    "dough",  # 961 n07860988
    "meat loaf, meatloaf",  # 962 n07871810
    "pizza, pizza pie",  # 963 n07873807
    "potpie",  # 964 n07875152
    "burrito",  # 965 n07880968
    "red wine",  # 966 n07892512
    "espresso",  # 967 n07920052
    "cup",  # 968 n07930864
    "eggnog",  # 969 n07932039
    "alp",  # 970 n09193705
    "bubble",  # 971 n09229709
    "cliff, drop, drop-off",  # 972 n09246464
    "coral reef",  # 973 n09256479
    "geyser",  # 974 n09288635
    "lakeside, lakeshore",  # 975 n09332890
    "promontory, headland, head, foreland",  # 976 n09399592
    "sandbar, sand bar",  # 977 n09421951
    "seashore, coast, seacoast, sea-coast",  # 978 n09428293
    "valley, vale",  # 979 n09468604
    "volcano",  # 980 n09472597
    "ballplayer, baseball player",  # 981 n09835506
    "groom, bridegroom",  # 982 n10148035
    "scuba diver",  # 983 n10565667
    "rapeseed",  # 984 n11879895
    "daisy",  # 985 n11939491
    "yellow lady's slipper, yellow lady-slipper, Cypripedium calceolus, Cypripedium parviflorum",  # 986 n12057211
    "corn",  # 987 n12144580
    "acorn",  # 988 n12267677
    "hip, rose hip, rosehip",  # 989 n12620546
    "buckeye, horse chestnut, conker",  # 990 n12768682
    "coral fungus",  # 991 n12985857
    "agaric",  # 992 n12998815
    "gyromitra",  # 993 n13037406
    "stinkhorn, carrion fungus",  # 994 n13040303
    "earthstar",  # 995 n13044778
    "hen-of-the-woods, hen of the woods, Polyporus frondosus, Grifola frondosa",  # 996 n13052670
    "bolete",  # 997 n13054560
    "ear, spike, capitulum",  # 998 n13133613
    "toilet tissue, toilet paper, bathroom tissue",  # 999 n15075141
)

__all__ = ["IMAGENET_1K_LABELS"]
