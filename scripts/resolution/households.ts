/**
 * A seeded synthetic population of households, and sign-ups to resolve against it, labelled by
 * person: a labelled set that is hard where real identity data is hard.
 *
 * The population: households of 1–6 people in GB, the US or AU, at one address, mostly sharing a
 * family name (family names skewed, so Smith and Nguyen are everywhere and term frequency matters);
 * parents 25–45 years older than their children; twins (one birth date, one address, one family
 * name) and fathers and sons of one name; a family tablet with the home IP, a landline, a family
 * email verified by two members, a teenager on a parent's card. Each person has their own emails
 * (gmail, outlook, yahoo, ISPs, employers), phones (stored in varied national and international
 * formats), cards and devices; phones on mobile networks share carrier IPs with strangers.
 *
 * On file: ~70 % of the people, one record each, some with partial birth dates, nicknames or
 * missing names. Sign-ups, each labelled with its person and a slice:
 *   returning   (45 %) someone on file, perturbed: typos, nicknames, swapped names, birth-date typos
 *               and day/month swaps, moves, new phones and emails, gmail dot/+tag variants, only
 *               some attributes given, identifiers verified or not;
 *   relative    (35 %, twins among them as `twin`) someone not on file whose household is: the same
 *               family name, address and often the same family tablet, a different person;
 *   stranger    (15 %) someone whose household has nobody on file;
 *   adversarial (5 %) a sign-up carrying a value shared by many unrelated people on file (a kiosk
 *               device shared by 200, a company card by 60, a parcel-forwarding address by 80), an
 *               unverified email squatted from someone on file, or a family email verified by two.
 * The slices are quotas (rounded shares of `signUps`), dealt in a seeded order; a pool that runs
 * dry falls back to the next kind (and the sign-up is labelled with the kind it really is).
 *
 * Rules: every draw comes from streamOf(seed, item, purpose) (per household, per person, per
 * sign-up), so the same options give the same set; emails, phones, addresses, devices and card
 * fingerprints are unique unless shared on purpose; ids are `p-<n>` (people), `h-<n>`
 * (households), `f-<n>` (records on file), `s-<n>` (sign-ups), numbered from 1.
 */
import type {
  LabelledRecord,
  LabelledSet,
  RecordAddress,
  RecordCard,
  RecordDevice,
  RecordIdentifier,
} from '../../resolution/record';
import type { Rand } from '../random';
import { pick, shuffle, streamOf, Zipf } from '../random';

// ---- names ------------------------------------------------------------------------------

/** Given names, most common first; after each, the nicknames and variants it goes by. */
const MALE_NAMES = parseNames(`
  Oliver Ollie | William Bill Will Liam | James Jim Jimmy Jamie | John Jack Johnny | Jack | Noah | Thomas Tom Tommy
  Michael Mike Mick Mikey | David Dave Davey | Robert Bob Rob Bobby | Daniel Dan Danny | Joseph Joe Joey | Harry
  Christopher Chris Kit | Matthew Matt Matty | Richard Rick Richie Dick | Charles Charlie Chuck | George | Liam
  Benjamin Ben Benny | Samuel Sam Sammy | Alexander Alex Xander | Andrew Andy Drew | Joshua Josh | Ethan | Lucas Luke
  Anthony Tony Ant | Mark | Steven Steve Stevie | Stephen Steve Stevie | Paul | Edward Ed Eddie Ted | Henry Harry Hank
  Nicholas Nick Nicky | Jonathan Jon Jonny | Jacob Jake | Ryan | Kevin Kev | Brian | Timothy Tim Timmy | Jason
  Peter Pete
  Patrick Pat Paddy | Kenneth Ken Kenny | Ronald Ron Ronnie | Jeffrey Jeff | Gary | Eric | Donald Don Donnie | Mason
  Theodore Theo Ted Teddy | Arthur Art Artie | Frederick Fred Freddie | Freddie Fred | Alfie | Archie | Leo | Oscar
  Isaac Ike | Gabriel Gabe | Nathan Nate | Nathaniel Nate Nat | Zachary Zach Zack | Tyler | Aaron | Adam | Cameron Cam
  Connor | Dylan | Callum Cal | Lachlan Lachie Lochie | Cooper | Riley | Hamish | Angus Gus | Fergus Gus | Declan
  Sean Shaun Shawn | Ciaran | Owen | Rhys | Gareth Gaz | Dominic Dom | Vincent Vince Vinny | Raymond Ray
  Lawrence Larry Laurie | Gregory Greg | Douglas Doug Dougie | Terence Terry | Graham | Malcolm Mal | Stuart Stu
  Neil | Ian | Keith | Barry | Colin | Alan Al | Derek Del | Trevor | Phillip Phil Pip | Philip Phil | Nigel | Simon Si
  Martin Marty | Luis | Carlos | Jose Pepe | Juan | Miguel | Diego | Alejandro Alex | Mohammed Mo Mohamed
  Muhammad Mo | Ahmed | Ali | Omar | Yusuf Yousef | Raj | Arjun | Rohan | Vikram Vik | Sanjay | Aditya Adi | Wei | Jun
  Hao | Minh | Duc | Tuan | Hieu | Kenji | Hiroshi | Dmitri Dima | Ivan Vanya | Giovanni Gianni | Marco | Luca
  Nikolaos Nick Nikos | Georgios George | Konstantinos Con Kostas | Tyrone Ty | DeShawn | Jamal | Malik | Darnell
  Cody | Brandon | Austin | Hunter | Chase | Wyatt | Caleb | Elijah Eli | Levi | Jayden | Aiden Aidan | Carter
  Jaxon Jax | Hudson | Maxwell Max | Maximilian Max | Tobias Toby | Jasper | Sebastian Seb | Felix | Hugo | Rory
  Finn | Harvey | Louis Lou | Reuben | Stanley Stan | Albert Al Bert | Ernest Ernie | Walter Walt Wally | Harold Hal
  Francis Frank | Frank | Bruce | Wayne | Craig | Darren Daz | Shane | Brett | Troy | Scott Scotty | Dean | Glenn
  Russell Russ | Warren | Jeremy Jerry | Gerald Gerry | Leonard Len Lenny | Eugene Gene | Clifford Cliff
  Bradley Brad | Joel | Jesse | Kyle | Jordan | Travis | Marcus | Victor Vic | Mathew Matt | Jon | Jake | Mitchell Mitch
`);
const FEMALE_NAMES = parseNames(`
  Olivia Liv Livvy | Amelia Millie Amy | Charlotte Lottie Charlie | Emily Em Emmy | Isla | Ava | Mia | Sophia Sophie
  Sophie | Grace Gracie | Elizabeth Liz Beth Eliza | Margaret Maggie Peggy Meg | Sarah | Emma Em | Jessica Jess Jessie
  Jennifer Jen Jenny | Catherine Kate Cathy Cat | Katherine Kate Kathy Katie | Mary Molly Polly | Susan Sue Susie
  Patricia Pat Trish Patty | Rebecca Becky Bec | Victoria Vicky Tori | Alexandra Alex Lexi Sasha | Samantha Sam Sammy
  Hannah | Laura | Lucy | Chloe | Ella | Lily | Ruby | Evie | Poppy | Freya | Harper | Madison Maddie
  Isabella Bella Izzy
  Isabelle Izzy Belle | Madeline Maddie Madi | Matilda Tilly Tilda | Eleanor Ellie Nell Nora | Florence Flo Florrie
  Penelope Penny | Deborah Deb Debbie | Christine Chris Chrissy | Christina Tina | Stephanie Steph | Jacqueline Jackie
  Kimberly Kim | Abigail Abby Abi | Dorothy Dot Dottie | Barbara Barb Babs | Linda | Karen | Nancy | Sandra Sandy
  Donna | Carol | Michelle Shelly | Amanda Mandy | Melissa Mel Missy | Melanie Mel | Sara | Anna Annie | Anne Annie
  Ann
  Helen | Louise Lou | Claire | Clare | Nicola Nicky | Nicole Nicky | Joanne Jo | Joanna Jo | Josephine Jo Josie
  Theresa Terri Tess | Teresa Terri | Jane | Janet Jan | Julie Jules | Julia Jules | Gillian Gill Jill | Angela Angie
  Natalie Nat | Natasha Tash Tasha | Danielle Dani | Gabrielle Gabby | Frances Fran Frankie | Harriet Hattie
  Georgina Georgie Gina | Georgia Georgie | Zoe | Zara | Amber | Jasmine Jas Jazz | Leah | Megan Meg | Lauren | Rachel
  Holly | Heather | Ashley Ash | Brittany Britt | Tiffany Tiff | Courtney | Kayla | Taylor | Brooke | Haley | Savannah
  Addison | Aubrey | Scarlett | Aria | Layla | Zoey | Nora | Hazel | Violet | Aurora | Stella | Maria | Sofia | Lucia
  Camila | Valentina | Guadalupe Lupe | Carmen | Fatima | Aisha Ayesha | Zainab | Priya | Ananya | Divya | Sunita | Mei
  Ying | Xiu | Linh | Lan | Mai | Hoa | Yuki | Sakura | Olga | Irina | Anastasia Ana Nastya | Giulia | Chiara
  Francesca Fran Frankie | Eleni Helen | Keisha | Imani | Aaliyah | Shanice | Tamara Tammy | Kylie | Tegan | Shannon
  Kirsty | Kerry | Siobhan | Niamh | Aoife | Caitlin Cait Kate | Bethany Beth | Gemma | Hayley | Stacey | Leanne | Kelly
  Tracey | Sharon | Lisa | Wendy | Dawn | Pauline | Maureen Mo | Brenda | Shirley | Joan | Jean | Evelyn Evie
  Edith Edie | Mildred Millie | Winifred Winnie | Beatrice Bea Trixie | Rosemary Rose Rosie | Rosalind Ros Roz
  Veronica Ronnie | Cynthia Cindy | Lucinda Lucy Cindy | Roberta Bobbie | Antonia Toni | Philippa Pippa Pip
  Arabella Bella | Annabel Annie Bel | Miranda Randi | Katie | Kate | Jenna | Alice Ally | Abby
`);

/** Family names, most common first (a Zipf draw over this order); `_` stands for a space. */
const FAMILY_NAMES = [
  ...new Set(
    `Smith Jones Nguyen Williams Brown Taylor Patel Johnson Wilson Lee Davies Evans Thomas Tran Roberts Walker Wright
  Robinson Thompson White Hughes Edwards Green Hall Wood Harris Martin Jackson Clarke Lewis Clark Singh Khan Garcia
  Martinez Rodriguez Hernandez Lopez Le Miller Davis Anderson Moore Young King Scott Baker Adams Nelson Hill Campbell
  Mitchell Carter Phillips Turner Parker Collins Stewart Morris Murphy Cook Rogers Morgan Cooper Wang Li Chen Zhang
  Pham Bailey Reed Kelly Howard Cox Ward Richardson Watson Brooks Gray James Bennett Price Ross Foster Powell Long
  Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Fisher Griffiths Lloyd Owen Ryan O'Brien
  O'Connor O'Neill Byrne Walsh McCarthy McDonald MacDonald MacKenzie McKenzie Fraser Murray Reid Graham Hamilton
  Kennedy Huynh Hoang Phan Vu Vo Dang Bui Do Ho Ngo Duong Ly Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lin He
  Kim Park Choi Shah Sharma Kumar Gupta Mehta Das Ali Ahmed Hussain Rahman Begum Islam Mohamed Ibrahim Gonzalez
  Perez Sanchez Ramirez Torres Cruz Ortiz Gomez Morales Ramos Reyes Ruiz Chavez Rossi Russo Ferrari Esposito Bianchi
  Romano Colombo Ricci Marino Greco Papadopoulos Nikolaidis Georgiou Dimitriou Kowalski Nowak Wisniewski Muller
  Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Ivanov Petrov Smirnov Cohen Levi Friedman
  Goldberg Andersson Johansson Larsen Hansen Jensen Nielsen Van_der_Merwe De_Souza Silva Santos Oliveira Pereira
  Costa Fernandes Dubois Moreau Laurent Smith-Jones Jones-Parry Ellis Marshall Chapman Mason Webb Shaw Holmes Mills
  Knight Lane Palmer Stevens Pearson Dixon Fletcher Hunt Hunter Gibson Grant Burton Day Harvey Spencer Andrews
  Matthews Lawrence Porter Warren Cole Simpson Atkinson Armstrong Barker Booth Carr Dawson Ferguson Gardner Hart
  Holland Hudson Jordan Kerr Little Lowe Mann Newman Nicholson Page Payne Poole Reynolds Rose Saunders Sharp Stone
  Sutton Tucker Walton Watts Webster Wells West Wheeler Whitehead Wilkinson Willis Woods Yates Fox Hayes Hope Jarvis
  Kemp Lamb Marsh Nash Norris Oliver Parsons Pearce Pritchard Quinn Randall Rowe Slater Steele Talbot Thornton
  Vaughan Vincent Wallace Whitaker Wilkins Washington Jefferson Banks Booker Mosley Dunn Gilbert Myers Ford Owens
  Harrison Freeman Hicks Crawford Henry Boyd Burns Gordon Rice Robertson Black Daniels Nichols Hawkins Perkins
  Stephens Pierce Berry Arnold Watkins Olson Carroll Duncan Snyder Cunningham Bradley Harper Riley Carpenter Weaver
  Greene Elliott Sims Austin Peters Kelley Franklin Lawson`
      .split(/\s+/)
      .filter(Boolean)
      .map((n) => n.replace(/_/g, ' ')),
  ),
];

function parseNames(text: string): string[][] {
  return text
    .split(/[|\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => s.split(/\s+/));
}

const GIVEN: Record<Sex, { names: string[][]; zipf: Zipf }> = {
  M: { names: MALE_NAMES, zipf: new Zipf(MALE_NAMES.length, 0.6) },
  F: { names: FEMALE_NAMES, zipf: new Zipf(FEMALE_NAMES.length, 0.6) },
};
const FAMILY_ZIPF = new Zipf(FAMILY_NAMES.length, 0.75);
/** A name's nicknames and variants (`William` → Bill, Will, Liam). */
const VARIANTS = new Map([...MALE_NAMES, ...FEMALE_NAMES].map(([name, ...v]) => [name as string, v]));

// ---- places -----------------------------------------------------------------------------

type Country = 'GB' | 'US' | 'AU';
type Sex = 'F' | 'M';

interface Place {
  country: Country;
  city: string;
  state: string | null;
  /** GB: outward-code areas; US: the ZIP's first three digits; AU: the whole postcode. */
  zips: string[];
  /** Landline dialling codes (national form, leading 0 where there is one). */
  areaCodes: string[];
}

const GB_PLACES: Place[] = `
  Leeds;West Yorkshire;LS;0113 | Manchester;Greater Manchester;M;0161 | London;;SW SE N E NW W;020
  Bristol;;BS;0117 | Birmingham;West Midlands;B;0121 | Glasgow;;G;0141 | Edinburgh;;EH;0131 | Cardiff;;CF;029
  Sheffield;South Yorkshire;S;0114 | Liverpool;Merseyside;L;0151 | Newcastle upon Tyne;Tyne and Wear;NE;0191
  Nottingham;Nottinghamshire;NG;0115 | Leicester;Leicestershire;LE;0116 | Brighton;East Sussex;BN;01273
  Norwich;Norfolk;NR;01603 | York;North Yorkshire;YO;01904 | Oxford;Oxfordshire;OX;01865 | Belfast;;BT;028
  Cambridge;Cambridgeshire;CB;01223 | Richmond;North Yorkshire;DL;01748 | Richmond;Surrey;TW;020`
  .split(/[|\n]/)
  .filter((s) => s.trim())
  .map((s) => {
    const [city, state, zips, code] = s.trim().split(';') as [string, string, string, string];
    return { country: 'GB', city, state: state || null, zips: zips.split(' '), areaCodes: [code] };
  });

const US_PLACES: Place[] = `
  New York;NY;100;212 646 917 | Brooklyn;NY;112;718 347 | Los Angeles;CA;900;213 310 323 | San Diego;CA;921;619 858
  San Francisco;CA;941;415 628 | Chicago;IL;606;312 773 | Houston;TX;770;713 832 | Austin;TX;787;512 737
  Dallas;TX;752;214 469 | Phoenix;AZ;850;602 480 | Philadelphia;PA;191;215 267 | Seattle;WA;981;206 425
  Portland;OR;972;503 971 | Denver;CO;802;303 720 | Boston;MA;021;617 857 | Atlanta;GA;303;404 678
  Miami;FL;331;305 786 | Orlando;FL;328;407 321 | Minneapolis;MN;554;612 | Detroit;MI;482;313 | Columbus;OH;432;614
  Nashville;TN;372;615 | Charlotte;NC;282;704 980 | Salt Lake City;UT;841;801 385 | Springfield;IL;627;217
  Springfield;MO;658;417 | Springfield;MA;011;413 | Portland;ME;041;207`
  .split(/[|\n]/)
  .filter((s) => s.trim())
  .map((s) => {
    const [city, state, zip3, codes] = s.trim().split(';') as [string, string, string, string];
    return { country: 'US', city, state, zips: [zip3], areaCodes: codes.split(' ') };
  });

const AU_AREA: Record<string, string> = { NSW: '02', ACT: '02', VIC: '03', TAS: '03', QLD: '07', SA: '08', WA: '08' };
const AU_PLACES: Place[] = `
  Parramatta;NSW;2150 | Bondi;NSW;2026 | Newtown;NSW;2042 | Chatswood;NSW;2067 | Blacktown;NSW;2148
  Cabramatta;NSW;2166 | Newcastle;NSW;2300 | Wollongong;NSW;2500 | Richmond;NSW;2753 | Fitzroy;VIC;3065
  Richmond;VIC;3121 | Footscray;VIC;3011 | Box Hill;VIC;3128 | St Kilda;VIC;3182 | Geelong;VIC;3220
  Ballarat;VIC;3350 | Toowong;QLD;4066 | Southport;QLD;4215 | Fortitude Valley;QLD;4006 | Cairns;QLD;4870
  Townsville;QLD;4810 | Subiaco;WA;6008 | Fremantle;WA;6160 | Joondalup;WA;6027 | Glenelg;SA;5045 | Norwood;SA;5067
  Sandy Bay;TAS;7005 | Launceston;TAS;7250 | Braddon;ACT;2612 | Belconnen;ACT;2617 | Darwin;NT;0800`
  .split(/[|\n]/)
  .filter((s) => s.trim())
  .map((s) => {
    const [city, state, zip] = s.trim().split(';') as [string, string, string];
    return { country: 'AU', city, state, zips: [zip], areaCodes: [AU_AREA[state] ?? '08'] };
  });

const PLACES: Record<Country, Place[]> = { GB: GB_PLACES, US: US_PLACES, AU: AU_PLACES };
const COUNTRIES: [Country, number][] = [
  ['US', 40],
  ['GB', 35],
  ['AU', 25],
];
const COUNTRY_CODE: Record<Country, string> = { GB: '44', US: '1', AU: '61' };

const STREET_NAMES = `High Church Station Victoria Park Mill Main Oak Maple Cedar Elm Pine Chestnut Willow King Queen
  George Albert Grove Manor Kingsway Jubilee Windsor York Springfield Highfield Green Hillside Meadow Orchard Riverside
  Lake Sunset Washington Lincoln Jefferson Madison Franklin Jackson Cherry Walnut Spruce Ash Beech Birch Hawthorn
  Holly Ivy Laurel Magnolia Acacia Banksia Wattle Waratah Jacaranda Boundary Bridge Canal Castle College Crown Dale
  Farm Forest Garden Glebe Heath Mount North South East West New Old School Spring Stanley Wellington Nelson
  Trafalgar Cromwell Lambert Ridge Summit Valley Bay Beach Harbour Ocean Prospect Pleasant Fairview Belmont Clifton
  Ashford Bramble Thornbury Kingsley Lyndhurst Marlborough Pembroke Regent Rosemary Sandringham Warwick Forbes
  Ramsay Milne Wallaby`
  .split(/\s+/)
  .filter(Boolean);

/** Street types per country: the full word and its usual abbreviation. */
const STREET_TYPES: Record<Country, [string, string][]> = {
  GB: [
    ['Road', 'Rd'],
    ['Street', 'St'],
    ['Lane', 'Ln'],
    ['Avenue', 'Ave'],
    ['Close', 'Cl'],
    ['Drive', 'Dr'],
    ['Gardens', 'Gdns'],
    ['Crescent', 'Cres'],
    ['Way', 'Way'],
    ['Terrace', 'Terr'],
    ['Place', 'Pl'],
  ],
  US: [
    ['Street', 'St'],
    ['Avenue', 'Ave'],
    ['Boulevard', 'Blvd'],
    ['Drive', 'Dr'],
    ['Lane', 'Ln'],
    ['Road', 'Rd'],
    ['Court', 'Ct'],
    ['Way', 'Way'],
    ['Place', 'Pl'],
    ['Parkway', 'Pkwy'],
    ['Circle', 'Cir'],
  ],
  AU: [
    ['Street', 'St'],
    ['Road', 'Rd'],
    ['Avenue', 'Ave'],
    ['Parade', 'Pde'],
    ['Crescent', 'Cres'],
    ['Drive', 'Dr'],
    ['Court', 'Ct'],
    ['Place', 'Pl'],
    ['Close', 'Cl'],
    ['Terrace', 'Tce'],
    ['Circuit', 'Cct'],
  ],
};
/** How often a record writes the street type abbreviated. */
const ABBREVIATED: Record<Country, number> = { GB: 0.3, US: 0.7, AU: 0.5 };

// ---- contact points ---------------------------------------------------------------------

const COMPANIES = `northwind.com contoso.co.uk fabrikam.com.au acmelogistics.com globex.com initech.com hooli.com
  umbrella-health.co.uk piedpiper.com vandelay.com dundermifflin.com sterlingcooper.com tyrell.com cyberdyne.com
  oceanic-air.com.au soylent.com gringotts.co.uk wonka.com bluthco.com prestige-worldwide.com`
  .split(/\s+/)
  .filter(Boolean);

/** Email providers per country, with weights; `*` is an employer's domain. */
const PROVIDERS: Record<Country, [string, number][]> = {
  GB: [
    ['gmail.com', 30],
    ['hotmail.co.uk', 10],
    ['outlook.com', 10],
    ['yahoo.co.uk', 6],
    ['icloud.com', 8],
    ['btinternet.com', 5],
    ['sky.com', 3],
    ['live.co.uk', 3],
    ['googlemail.com', 2],
    ['*', 12],
  ],
  US: [
    ['gmail.com', 38],
    ['yahoo.com', 10],
    ['outlook.com', 8],
    ['hotmail.com', 8],
    ['icloud.com', 10],
    ['aol.com', 3],
    ['comcast.net', 3],
    ['protonmail.com', 2],
    ['*', 12],
  ],
  AU: [
    ['gmail.com', 32],
    ['outlook.com', 8],
    ['hotmail.com', 10],
    ['yahoo.com.au', 6],
    ['icloud.com', 9],
    ['bigpond.com', 6],
    ['optusnet.com.au', 3],
    ['*', 12],
  ],
};

const CARD_BRANDS: Record<Country, [string, number][]> = {
  US: [
    ['visa', 52],
    ['mastercard', 30],
    ['amex', 12],
    ['discover', 6],
  ],
  GB: [
    ['visa', 60],
    ['mastercard', 35],
    ['amex', 5],
  ],
  AU: [
    ['visa', 55],
    ['mastercard', 38],
    ['amex', 7],
  ],
};

/** First octets of home broadband IPv4 ranges, and an IPv6 prefix, per country. */
const IPV4_FIRST: Record<Country, number[]> = {
  GB: [81, 86, 90, 92, 109, 151, 176, 212],
  US: [24, 50, 67, 68, 71, 73, 76, 98, 107, 174],
  AU: [1, 49, 58, 101, 110, 115, 120, 124, 144, 203],
};
const IPV6_PREFIX: Record<Country, string> = { GB: '2a00:23c5', US: '2600:1700', AU: '2001:8003' };
/** Mobile carriers put many subscribers behind one address (CGNAT): this many per country. */
const CARRIER_IPS = 300;

// ---- the adversarial slice's shared values ------------------------------------------------

/**
 * The values the adversarial slice shares among unrelated people on file (`sharedBy` of them,
 * each from a different household, when the population has that many), and carries into sign-ups.
 */
export const ADVERSARIAL = {
  kioskDevice: { fingerprint: '5f0c7e2a9b41d3c88e6a17f2049bd5e3', ip: '203.0.113.40' } satisfies RecordDevice,
  companyCard: {
    fingerprint: 'Qm7TzK2pLx9VbR4c',
    brand: 'visa',
    last_four: '7731',
    expiry_month: 9,
    expiry_year: 2028,
  } satisfies RecordCard,
  forwardingAddress: {
    street1: '1250 Commerce Dr',
    street2: 'Suite 100',
    city: 'New Castle',
    state: 'DE',
    zip_code: '19720',
    country: 'US',
  } satisfies RecordAddress,
  sharedBy: { kioskDevice: 200, companyCard: 60, forwardingAddress: 80 },
} as const;

/** The sign-up slices, with their shares of the sign-ups (`twin` is part of `relative`'s share). */
export const SLICE_SHARES = { returning: 0.45, relative: 0.35, stranger: 0.15, adversarial: 0.05 } as const;
/** The share of the relatives' quota given to twins (as far as there are twins to give). */
const TWIN_SHARE_OF_RELATIVES = 0.15;

// ---- draws ------------------------------------------------------------------------------

/** The purposes of the streams: one stream per item (household, person, sign-up) and purpose. */
const P = {
  household: 1,
  contact: 2,
  cards: 3,
  devices: 4,
  onFile: 5,
  fileRecord: 6,
  signUp: 7,
  pools: 8,
  hazards: 9,
  carriers: 10,
  order: 11,
} as const;

function int(rand: Rand, n: number): number {
  return Math.floor(rand() * n);
}

function oneOf<T>(rand: Rand, items: ArrayLike<T>): T {
  return items[int(rand, items.length)] as T;
}

function digits(rand: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(int(rand, 10));
  return s;
}

/** murmur3's finaliser: a bijection on 32-bit integers, so distinct counters give distinct values. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Four 32-bit words for the n-th item of a kind: the first differs for every n, the rest follow from it. */
function words(seed: number, salt: number, n: number): [number, number, number, number] {
  const first = fmix32(n ^ fmix32(seed ^ salt));
  return [first, fmix32(first + 0x9e3779b9), fmix32(first + 0x3c6ef372), fmix32(first + 0xdaa66d2b)];
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex8(w: number): string {
  return (
    (HEX[w >>> 24] as string) + HEX[(w >>> 16) & 255] + (HEX[(w >>> 8) & 255] as string) + (HEX[w & 255] as string)
  );
}

/** The n-th device's fingerprint: 32 hex digits, distinct for every n. */
function deviceFingerprint(seed: number, n: number): string {
  const [a, b, c, d] = words(seed, 0x5bd1e995, n);
  return hex8(a) + hex8(b) + hex8(c) + hex8(d);
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(n: number, length: number): string {
  let s = '';
  for (let i = 0, v = n; i < length; i++, v = Math.floor(v / 62)) s += BASE62[v % 62];
  return s;
}

/** The n-th card's processor fingerprint: 16 letters and digits, like Stripe's, distinct for every n. */
function cardFingerprint(seed: number, n: number): string {
  const [a, b, c] = words(seed, 0x27d4eb2f, n);
  return base62(a, 6) + base62(b, 5) + base62(c, 5);
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** An email as one mailbox: lower case, no +tag; gmail without dots, googlemail as gmail. */
function canonicalEmail(value: string): string {
  const at = value.lastIndexOf('@');
  const local = (value.slice(0, at).toLowerCase().split('+')[0] ?? '').trim();
  const domain = value.slice(at + 1).toLowerCase();
  if (domain === 'gmail.com' || domain === 'googlemail.com') return `${local.replace(/\./g, '')}@gmail.com`;
  return `${local}@${domain}`;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

type Ymd = [number, number, number];

function iso([y, m, d]: Ymd, precision: 'day' | 'month' | 'year' = 'day'): string {
  const ym = `${y}-${String(m).padStart(2, '0')}`;
  return precision === 'year' ? String(y) : precision === 'month' ? ym : `${ym}-${String(d).padStart(2, '0')}`;
}

function drawDate(rand: Rand, year: number): Ymd {
  const month = 1 + int(rand, 12);
  return [year, month, 1 + int(rand, daysIn(year, month))];
}

function drawGiven(rand: Rand, sex: Sex): string {
  const g = GIVEN[sex];
  return (g.names[g.zipf.draw(rand)] as string[])[0] as string;
}

function drawFamily(rand: Rand): string {
  return FAMILY_NAMES[FAMILY_ZIPF.draw(rand)] as string;
}

/**
 * One person with this generator's name and birth-date distributions, with no household: what
 * `npm run seed` gives each seeded customer, so the million-customer graph's blocking keys are as
 * crowded as the labelled data's.
 */
export function drawPerson(rand: Rand): { given_name: string; family_name: string; birth_date: string } {
  const sex: Sex = rand() < 0.5 ? 'F' : 'M';
  return {
    given_name: drawGiven(rand, sex),
    family_name: drawFamily(rand),
    birth_date: iso(drawDate(rand, 1940 + int(rand, 66))),
  };
}

// ---- the population -----------------------------------------------------------------------

interface Phone {
  country: Country;
  /** The national significant number (no trunk 0, no country code). */
  nsn: string;
  /** Digits of the area code in `nsn` (landlines), for writing it the national way. */
  area: number;
  verified: boolean;
}

interface Address {
  number: string;
  street: string;
  type: [string, string];
  unit: string | null;
  place: Place;
  zip: string;
  /** The ZIP+4 extension, for US records that write it. */
  zip4: string;
}

interface Household {
  n: number;
  id: string;
  country: Country;
  address: Address;
  homeIp: string;
  tablet: RecordDevice | null;
  familyEmail: string | null;
  landline: Phone | null;
  members: Person[];
}

interface Person {
  n: number;
  id: string;
  household: Household;
  sex: Sex;
  given: string;
  family: string;
  birth: Ymd;
  adult: boolean;
  twin: Person | null;
  emails: RecordIdentifier[];
  phones: Phone[];
  cards: RecordCard[];
  devices: RecordDevice[];
  usesTablet: boolean;
  familyEmail: boolean;
  landline: boolean;
  parentCard: RecordCard | null;
  onFile: boolean;
}

interface LocalParts {
  g: string;
  f: string;
  nick: string;
  yy: string;
  year: string;
  rand: Rand;
}
type Local = (p: LocalParts) => string;

/** How people make an email's local part from their names, with weights (at work, and elsewhere). */
const WORK_LOCALS: [Local, number][] = [
  [(p) => `${p.g}.${p.f}`, 3],
  [(p) => `${p.g[0]}${p.f}`, 2],
  [(p) => `${p.g}${p.f[0]}`, 1],
];
const LOCALS: [Local, number][] = [
  [(p) => `${p.g}.${p.f}`, 25],
  [(p) => `${p.g}${p.f}`, 12],
  [(p) => `${p.g[0]}${p.f}`, 10],
  [(p) => `${p.g}_${p.f}`, 5],
  [(p) => `${p.g}.${p.f}${p.yy}`, 8],
  [(p) => `${p.g}${p.f}${int(p.rand, 1000)}`, 8],
  [(p) => `${p.f}.${p.g}`, 4],
  [(p) => `${p.g}${p.year}`, 6],
  [(p) => `${p.nick}${p.f}`, 5],
  [(p) => `${p.g}.${p.f[0]}`, 4],
  [(p) => `${p.nick}${p.yy}`, 4],
];

/** What the whole run shares: the values already handed out (so new ones are new), and counters. */
class Builder {
  readonly emails = new Set<string>();
  readonly phones = new Set<string>();
  readonly addresses = new Set<string>();
  private devices = 0;
  private cards = 0;
  readonly carrierIps: Record<Country, string[]>;

  constructor(readonly seed: number) {
    const ips = (c: Country, k: number): string[] => {
      const rand = streamOf(seed, k, P.carriers);
      return Array.from({ length: CARRIER_IPS }, () => this.ipv4(rand, c));
    };
    this.carrierIps = { GB: ips('GB', 0), US: ips('US', 1), AU: ips('AU', 2) };
  }

  ipv4(rand: Rand, country: Country): string {
    return `${oneOf(rand, IPV4_FIRST[country])}.${int(rand, 256)}.${int(rand, 256)}.${1 + int(rand, 254)}`;
  }

  homeIp(rand: Rand, country: Country): string {
    if (rand() >= 0.2) return this.ipv4(rand, country);
    const groups = Array.from({ length: 6 }, () => int(rand, 0x10000).toString(16));
    return `${IPV6_PREFIX[country]}:${groups.join(':')}`;
  }

  device(ip: string | null): RecordDevice {
    return { fingerprint: deviceFingerprint(this.seed, this.devices++), ip };
  }

  card(rand: Rand, country: Country): RecordCard {
    return {
      fingerprint: rand() < 0.03 ? null : cardFingerprint(this.seed, this.cards++),
      brand: pick(rand, CARD_BRANDS[country]),
      last_four: digits(rand, 4),
      expiry_month: 1 + int(rand, 12),
      expiry_year: 2025 + int(rand, 7),
    };
  }

  address(rand: Rand, place: Place): Address {
    const country = place.country;
    for (;;) {
      const number = String(country === 'US' ? 100 + int(rand, 9900) : 1 + int(rand, country === 'GB' ? 180 : 250));
      const street = oneOf(rand, STREET_NAMES);
      const type = oneOf(rand, STREET_TYPES[country]);
      const unit = rand() < 0.15 ? unitOf(rand, country) : null;
      const zip =
        country === 'GB'
          ? `${oneOf(rand, place.zips)}${1 + int(rand, 20)} ${int(rand, 10)}${postcodeLetters(rand)}`
          : country === 'US'
            ? `${place.zips[0]}${String(1 + int(rand, 99)).padStart(2, '0')}`
            : (place.zips[0] as string);
      const key = [country, place.city, zip, number, street, type[0], unit].join('|');
      if (this.addresses.has(key)) continue;
      this.addresses.add(key);
      return { number, street, type, unit, place, zip, zip4: digits(rand, 4) };
    }
  }

  /** A new email for the person: a provider of their country, a local part made from their names. */
  email(rand: Rand, given: string, family: string, year: number, country: Country): string {
    const provider = pick(rand, PROVIDERS[country]);
    const company = provider === '*';
    const domain = company ? oneOf(rand, COMPANIES) : provider;
    const g = slug(given);
    const f = slug(family);
    const nick = slug(oneOf(rand, [given, ...(VARIANTS.get(given) ?? [])]));
    const yy = String(year).slice(2);
    const parts: LocalParts = { g, f, nick, yy, year: String(year), rand };
    const local = pick(rand, company ? WORK_LOCALS : LOCALS)(parts);
    for (let attempt = 0; ; attempt++) {
      const candidate =
        attempt === 0
          ? local
          : company && attempt < 4
            ? local.replace('.', `.${String.fromCharCode(97 + int(rand, 26))}.`)
            : `${local}${int(rand, attempt < 8 ? 100 : 100000)}`;
      if (this.claimEmail(`${candidate}@${domain}`)) return `${candidate}@${domain}`;
    }
  }

  familyEmail(rand: Rand, household: Household, family: string): string {
    const f = slug(family);
    const domain = pick(
      rand,
      PROVIDERS[household.country].filter(([d]) => d !== '*'),
    );
    const local = pick(rand, [
      [f.endsWith('s') ? `the${f}es` : `the${f}s`, 3],
      [`${f}family`, 3],
      [`${f}.family`, 2],
      [`${f}${household.address.number}`, 2],
      [`${f}home`, 1],
    ]);
    for (let attempt = 0; ; attempt++) {
      const value = `${attempt === 0 ? local : `${local}${int(rand, 1000)}`}@${domain}`;
      if (this.claimEmail(value)) return value;
    }
  }

  private claimEmail(value: string): boolean {
    const key = canonicalEmail(value);
    if (this.emails.has(key)) return false;
    this.emails.add(key);
    return true;
  }

  /** A new mobile number in the place's country (US numbers take the place's area codes). */
  mobile(rand: Rand, place: Place, verified: boolean): Phone {
    const country = place.country;
    for (;;) {
      const nsn =
        country === 'GB'
          ? `7${oneOf(rand, '456789')}${digits(rand, 8)}`
          : country === 'US'
            ? `${oneOf(rand, place.areaCodes)}${2 + int(rand, 8)}${digits(rand, 6)}`
            : `4${digits(rand, 8)}`;
      if (country === 'US' && nsn.slice(3, 6) === '555') continue;
      if (this.claimPhone(country, nsn)) return { country, nsn, area: 0, verified };
    }
  }

  /** A new landline in the place's area (GB and AU numbers carry the area code). */
  landline(rand: Rand, place: Place): Phone {
    const country = place.country;
    if (country === 'US') return { ...this.mobile(rand, place, false), area: 3 };
    const area = (place.areaCodes[0] as string).slice(1);
    for (;;) {
      const nsn = `${area}${2 + int(rand, 8)}${digits(rand, (country === 'GB' ? 10 : 9) - area.length - 1)}`;
      if (this.claimPhone(country, nsn)) return { country, nsn, area: area.length, verified: false };
    }
  }

  private claimPhone(country: Country, nsn: string): boolean {
    const key = `${COUNTRY_CODE[country]}${nsn}`;
    if (this.phones.has(key)) return false;
    this.phones.add(key);
    return true;
  }
}

function unitOf(rand: Rand, country: Country): string {
  if (country === 'GB') return `Flat ${1 + int(rand, 12)}`;
  if (country === 'US') return `Apt ${1 + int(rand, 30)}${oneOf(rand, ['', '', 'A', 'B', 'C'])}`;
  return `Unit ${1 + int(rand, 20)}`;
}

function postcodeLetters(rand: Rand): string {
  const letters = 'ABDEFGHJLNPQRSTUWXYZ';
  return oneOf(rand, letters) + oneOf(rand, letters);
}

// ---- households -------------------------------------------------------------------------

const SIZES: [number, number][] = [
  [1, 28],
  [2, 33],
  [3, 15],
  [4, 14],
  [5, 6],
  [6, 4],
];

/** How many emails, cards and devices a person has, with weights. */
const EMAIL_COUNTS: [number, number][] = [
  [0, 3],
  [1, 72],
  [2, 25],
];
const CARD_COUNTS: [number, number][] = [
  [0, 12],
  [1, 63],
  [2, 20],
  [3, 5],
];
const DEVICE_COUNTS: [number, number][] = [
  [1, 45],
  [2, 42],
  [3, 13],
];

interface Member {
  sex: Sex;
  family: string;
  birth: Ymd;
  adult: boolean;
  /** Named after the head of the household (his father). */
  junior: boolean;
}

/** Who lives in the household: a head, perhaps a partner, children 25–45 years younger (twins sometimes). */
function membersOf(rand: Rand, size: number): Member[] {
  const couple = size >= 2 && rand() < (size === 2 ? 0.8 : 0.85);
  const children = size - (couple ? 2 : 1);
  const family = drawFamily(rand);
  const headSex: Sex = rand() < 0.5 ? 'F' : 'M';
  const head: Member = {
    sex: headSex,
    family,
    birth: drawDate(rand, children > 0 ? 1958 + int(rand, 27) : 1940 + int(rand, 66)),
    adult: true,
    junior: false,
  };
  const members = [head];
  if (couple) {
    const year = Math.min(head.birth[0] + int(rand, 13) - 6, children > 0 ? 1984 : 2005);
    const sex: Sex = rand() < 0.9 ? (headSex === 'F' ? 'M' : 'F') : headSex;
    members.push({
      sex,
      family: rand() < 0.8 ? family : drawFamily(rand),
      birth: drawDate(rand, year),
      adult: true,
      junior: false,
    });
  }
  const years = members.map((m) => m.birth[0]);
  const lo = Math.max(...years) + 25;
  const hi = Math.min(Math.min(...years) + 45, 2009);
  const partnerFamily = members[1]?.family ?? family;
  for (let c = 0; c < children; c++) {
    const r = rand();
    const childFamily =
      r < 0.93 || partnerFamily === family ? family : r < 0.97 ? partnerFamily : `${family}-${partnerFamily}`;
    const sex: Sex = rand() < 0.5 ? 'F' : 'M';
    const birth = drawDate(rand, lo + int(rand, hi - lo + 1));
    // A son named after his father: the same name and address, another birth date.
    const junior = sex === 'M' && headSex === 'M' && rand() < 0.03;
    members.push({ sex, family: childFamily, birth, adult: false, junior });
  }
  return members;
}

/** Given names for the members: distinct within the household, but for a junior (his father's name). */
function nameMembers(rand: Rand, members: Member[]): string[] {
  const taken = new Set<string>();
  const names: string[] = [];
  for (const m of members) {
    let given = drawGiven(rand, m.sex);
    for (let i = 0; i < 20 && taken.has(given); i++) given = drawGiven(rand, m.sex);
    if (m.junior) given = names[0] as string;
    taken.add(given);
    names.push(given);
  }
  return names;
}

function makeHousehold(b: Builder, h: number, firstPerson: number): Household {
  const rand = streamOf(b.seed, h, P.household);
  const country = pick(rand, COUNTRIES);
  const place = oneOf(rand, PLACES[country]);
  const household: Household = {
    n: h,
    id: `h-${h + 1}`,
    country,
    address: b.address(rand, place),
    homeIp: b.homeIp(rand, country),
    tablet: null,
    familyEmail: null,
    landline: null,
    members: [],
  };
  const members = membersOf(rand, pick(rand, SIZES));
  const names = nameMembers(rand, members);
  // Twins: the first two children share a birth date and family name (given names stay distinct).
  const kids = members.map((m, i) => [m, i] as const).filter(([m]) => !m.adult);
  const twins = kids.length >= 2 && rand() < 0.2;
  if (twins) {
    kids[1]![0].birth = [...kids[0]![0].birth];
    kids[1]![0].family = kids[0]![0].family;
  }
  household.members = members.map((m, i) => makePerson(b, household, firstPerson + i, m, names[i] as string));
  if (twins) {
    const [a, c] = [household.members[kids[0]![1]]!, household.members[kids[1]![1]]!];
    [a.twin, c.twin] = [c, a];
  }
  sharedThings(b, rand, household, place);
  return household;
}

/** What a household shares: a tablet, a family email, a landline, a parent's card in a teenager's hands. */
function sharedThings(b: Builder, rand: Rand, household: Household, place: Place): void {
  const [head, partner] = household.members;
  const adults = household.members.filter((m) => m.adult);
  if (household.members.length >= 2 && rand() < 0.6) {
    household.tablet = b.device(household.homeIp);
    for (const m of household.members) m.usesTablet = rand() < 0.75;
  }
  if (adults.length >= 2 && partner && rand() < 0.12) {
    household.familyEmail = b.familyEmail(rand, household, head!.family);
    head!.familyEmail = partner.familyEmail = true;
  }
  if (rand() < (head!.birth[0] < 1970 ? 0.35 : 0.1)) {
    household.landline = b.landline(rand, place);
    for (const a of adults) a.landline = true;
  }
  const child = household.members.find((m) => !m.adult);
  if (child && head!.cards.length > 0 && rand() < 0.08) child.parentCard = head!.cards[0] as RecordCard;
}

function makePerson(b: Builder, household: Household, n: number, m: Member, given: string): Person {
  const place = household.address.place;
  const country = household.country;
  const contact = streamOf(b.seed, n, P.contact);
  const emails = Array.from({ length: pick(contact, EMAIL_COUNTS) }, () => ({
    value: b.email(contact, given, m.family, m.birth[0], country),
    verified: contact() < 0.85,
  }));
  const phones: Phone[] = [];
  if (contact() < 0.96) phones.push(b.mobile(contact, place, contact() < 0.8));
  if (contact() < 0.08) phones.push(b.mobile(contact, place, contact() < 0.8));
  const cardRand = streamOf(b.seed, n, P.cards);
  const cards = Array.from({ length: pick(cardRand, CARD_COUNTS) }, () => b.card(cardRand, country));
  const dev = streamOf(b.seed, n, P.devices);
  const count = pick(dev, DEVICE_COUNTS);
  const phoneIp = dev() < 0.6 ? oneOf(dev, b.carrierIps[country]) : dev() < 0.9 ? household.homeIp : null;
  const devices = [b.device(phoneIp)];
  if (count >= 2) devices.push(b.device(household.homeIp));
  if (count >= 3) devices.push(b.device(b.ipv4(dev, country)));
  return {
    n,
    id: `p-${n + 1}`,
    household,
    sex: m.sex,
    given,
    family: m.family,
    birth: m.birth,
    adult: m.adult,
    twin: null,
    emails,
    phones,
    cards,
    devices,
    usesTablet: false,
    familyEmail: false,
    landline: false,
    parentCard: null,
    onFile: false,
  };
}

// ---- writing values as people write them --------------------------------------------------

/** An address as one record writes it: street type full or short; with `vary`, as a sign-up types it. */
function renderAddress(rand: Rand, a: Address, vary: boolean): RecordAddress {
  const country = a.place.country;
  let street1 = `${a.number} ${a.street} ${rand() < ABBREVIATED[country] ? a.type[1] : a.type[0]}`;
  let street2 = a.unit;
  if (street2 && country === 'AU' && rand() < 0.3) {
    street1 = `${street2.replace(/^Unit /, '')}/${street1}`;
    street2 = null;
  }
  let state = country === 'GB' && rand() < 0.5 ? null : a.place.state;
  let zip = a.zip;
  let city = a.place.city;
  if (vary) {
    if (street2 && rand() < 0.25) street2 = null;
    if (state && rand() < 0.15) state = null;
    if (country === 'US' && rand() < 0.1) zip = `${zip}-${a.zip4}`;
    if (country === 'GB' && rand() < 0.1) zip = zip.replace(' ', '');
    const r = rand();
    const recase = r < 0.04 ? (s: string) => s.toUpperCase() : r < 0.08 ? (s: string) => s.toLowerCase() : null;
    if (recase) {
      [street1, city, zip] = [recase(street1), recase(city), recase(zip)];
      street2 = street2 && recase(street2);
    }
  }
  return { street1, street2, city, state, zip_code: zip, country };
}

type Format = (n: string, cc: string, head: string, tail: string) => string;

/** How people write a US number, with weights. */
const US_FORMATS: [Format, number][] = [
  [(n) => `(${n.slice(0, 3)}) ${n.slice(3, 6)}-${n.slice(6)}`, 30],
  [(n) => `${n.slice(0, 3)}-${n.slice(3, 6)}-${n.slice(6)}`, 25],
  [(n) => `${n.slice(0, 3)}.${n.slice(3, 6)}.${n.slice(6)}`, 8],
  [(n) => `+1 ${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`, 10],
  [(n) => `+1${n}`, 12],
  [(n) => `1-${n.slice(0, 3)}-${n.slice(3, 6)}-${n.slice(6)}`, 5],
  [(n) => n, 10],
];
/** How people write a GB or AU number (`head` is the area code or the mobile prefix), with weights. */
const FORMATS: [Format, number][] = [
  [(_n, _cc, head, tail) => `0${head} ${tail}`, 30],
  [(n) => `0${n}`, 20],
  [(_n, cc, head, tail) => `+${cc} ${head} ${tail}`, 20],
  [(n, cc) => `+${cc}${n}`, 15],
  [(_n, cc, head, tail) => `+${cc} (0)${head} ${tail}`, 6],
  [(_n, cc, head, tail) => `00${cc} ${head} ${tail}`, 4],
];
/** Landlines are written with the area code in brackets, too. */
const LANDLINE_FORMATS: [Format, number][] = [...FORMATS, [(_n, _cc, head, tail) => `(0${head}) ${tail}`, 20]];

function formatPhone(rand: Rand, p: Phone): string {
  const n = p.nsn;
  if (p.country === 'US') return pick(rand, US_FORMATS)(n, '1', '', '');
  const split = p.area > 0 ? p.area : p.country === 'GB' ? 4 : 3;
  const rest = n.slice(split);
  const tail =
    rest.length === 8
      ? `${rest.slice(0, 4)} ${rest.slice(4)}`
      : rest.length === 6 && p.area === 0
        ? `${rest.slice(0, 3)} ${rest.slice(3)}`
        : rest;
  return pick(rand, p.area > 0 ? LANDLINE_FORMATS : FORMATS)(n, COUNTRY_CODE[p.country], n.slice(0, split), tail);
}

const KEYBOARD = ['qwertyuiop', 'asdfghjkl', 'zxcvbnm'];

/** A key next to the letter's on a QWERTY keyboard (the letter itself when it is not a letter). */
function neighbour(rand: Rand, ch: string): string {
  const lower = ch.toLowerCase();
  const row = KEYBOARD.findIndex((r) => r.includes(lower));
  if (row < 0) return ch;
  const col = (KEYBOARD[row] as string).indexOf(lower);
  const near = [
    KEYBOARD[row]?.[col - 1],
    KEYBOARD[row]?.[col + 1],
    KEYBOARD[row - 1]?.[col],
    KEYBOARD[row + 1]?.[col],
  ].filter((c): c is string => c !== undefined);
  const out = oneOf(rand, near);
  return ch === lower ? out : out.toUpperCase();
}

/** One edit (a neighbouring key, a dropped or doubled letter, two letters swapped), never the first letter. */
function typo(rand: Rand, s: string): string {
  if (s.length < 2) return s + s;
  const i = 1 + int(rand, s.length - 1);
  const ch = s[i] as string;
  switch (int(rand, 4)) {
    case 0:
      return s.slice(0, i) + neighbour(rand, ch) + s.slice(i + 1);
    case 1:
      return s.length > 3 ? s.slice(0, i) + s.slice(i + 1) : s + ch;
    case 2:
      return s.slice(0, i) + ch + s.slice(i);
    default:
      return s[i - 1] === ch ? s.slice(0, i) + neighbour(rand, ch) + s.slice(i + 1) : swapAt(s, i);
  }
}

function swapAt(s: string, i: number): string {
  return s.slice(0, i - 1) + s[i] + s[i - 1] + s.slice(i + 1);
}

/** A birth date mistyped: a day or month off, the year's last digit, the year's last two digits swapped. */
function dateTypo(rand: Rand, [y, m, d]: Ymd): Ymd {
  const kind = int(rand, 4);
  const tens = Math.floor(y / 10) % 10;
  const units = y % 10;
  if (kind === 0) {
    const moved = Math.min(daysIn(y, m), Math.max(1, d + (rand() < 0.5 ? -1 : 1) * (1 + int(rand, 3))));
    return [y, m, moved === d ? (d === 1 ? 2 : d - 1) : moved];
  }
  if (kind === 1) {
    const month = 1 + ((m + int(rand, 11)) % 12);
    return [y, month, Math.min(d, daysIn(y, month))];
  }
  if (kind === 2 && tens !== units) {
    const year = y - tens * 10 - units + units * 10 + tens;
    return [year, m, Math.min(d, daysIn(year, m))];
  }
  const year = y - units + ((units + 1 + int(rand, 9)) % 10);
  return [year, m, Math.min(d, daysIn(year, m))];
}

const TAGS = ['shop', 'news', 'signup', 'deals', '2024', 'persona', 'spam'];

/** Another way of writing the same mailbox: gmail dots moved, a +tag, googlemail, capitals. */
function emailVariant(rand: Rand, value: string): string {
  const at = value.lastIndexOf('@');
  let local = value.slice(0, at);
  let domain = value.slice(at + 1);
  const gmail = domain === 'gmail.com' || domain === 'googlemail.com';
  const kind = gmail ? int(rand, 4) : 3;
  if (kind === 0) {
    if (local.includes('.')) local = local.replace(/\./g, '');
    else if (local.length > 2) {
      const i = 1 + int(rand, local.length - 1);
      local = `${local.slice(0, i)}.${local.slice(i)}`;
    }
  } else if (kind === 1) local = `${local}+${oneOf(rand, TAGS)}`;
  else if (kind === 2) domain = domain === 'gmail.com' ? 'googlemail.com' : 'gmail.com';
  else local = local.replace(/(^|[._])([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
  return `${local}@${domain}`;
}

// ---- records ----------------------------------------------------------------------------

type Fields = Omit<LabelledRecord, 'id' | 'person' | 'household' | 'slice' | 'region'>;

function labelled(id: string, p: Person, slice: string, fields: Fields): LabelledRecord {
  return { id, person: p.id, household: p.household.id, slice, region: p.household.country, ...fields };
}

/** The person's record on file: as they gave it once (a nickname, a partial birth date, a gap now and then). */
function fileRecord(b: Builder, p: Person): Fields {
  const rand = streamOf(b.seed, p.n, P.fileRecord);
  const h = p.household;
  const variants = VARIANTS.get(p.given) ?? [];
  const given = rand() < 0.02 ? null : variants.length > 0 && rand() < 0.06 ? oneOf(rand, variants) : p.given;
  const family = rand() < 0.015 ? null : p.family;
  // Twins' records always carry the whole date: that the dates are equal is the hazard.
  const precision = p.twin ? 'day' : pick(rand, DATE_ON_FILE);
  const emails = p.emails.map((e) => ({ ...e }));
  if (p.familyEmail && h.familyEmail) emails.push({ value: h.familyEmail, verified: true });
  const phones = p.phones.map((ph) => ({ value: formatPhone(rand, ph), verified: ph.verified }));
  if (p.landline && h.landline) phones.push({ value: formatPhone(rand, h.landline), verified: rand() < 0.3 });
  const addresses = [renderAddress(rand, h.address, false)];
  if (rand() < 0.05) addresses.push(renderAddress(rand, b.address(rand, oneOf(rand, PLACES[h.country])), false));
  const devices = p.devices.map((d) => ({ ...d }));
  if (p.usesTablet && h.tablet) devices.push({ ...h.tablet });
  const cards = p.cards.map((c) => ({ ...c }));
  if (p.parentCard) cards.push({ ...p.parentCard });
  return {
    given_name: given,
    family_name: family,
    birth_date: precision === 'none' ? null : iso(p.birth, precision),
    emails,
    phones,
    addresses,
    devices,
    cards,
  };
}

const DATE_ON_FILE: ['day' | 'month' | 'year' | 'none', number][] = [
  ['day', 85],
  ['month', 4],
  ['year', 5],
  ['none', 6],
];

/** Names as a sign-up gives them: nicknames; for a returning person also typos, swaps, a new married name. */
function signUpNames(rand: Rand, p: Person, perturb: boolean): [string | null, string | null] {
  let given: string | null = p.given;
  let family: string | null = p.family;
  const variants = VARIANTS.get(p.given) ?? [];
  if (variants.length > 0 && rand() < (perturb ? 0.12 : 0.05)) given = oneOf(rand, variants);
  if (perturb) {
    if (rand() < 0.07) given = typo(rand, given);
    if (rand() < 0.05) family = typo(rand, family);
    if (p.sex === 'F' && p.adult && rand() < 0.03) family = drawFamily(rand);
    if (rand() < 0.03) [given, family] = [family, given];
  }
  if (rand() < 0.02) given = null;
  if (rand() < 0.03) [given, family] = [given?.toUpperCase() ?? null, family?.toUpperCase() ?? null];
  return [given, family];
}

function signUpBirthDate(rand: Rand, p: Person, perturb: boolean): string | null {
  if (p.twin && !perturb) return iso(p.birth);
  const r = rand();
  if (perturb && r < 0.05) return iso(dateTypo(rand, p.birth));
  if (perturb && r < 0.09) {
    const [y, m, d] = p.birth;
    return iso(d <= 12 && d !== m ? [y, d, m] : dateTypo(rand, p.birth));
  }
  if (r < (perturb ? 0.13 : 0.04)) return iso(p.birth, rand() < 0.5 ? 'year' : 'month');
  if (r < (perturb ? 0.2 : 0.1)) return null;
  return iso(p.birth);
}

function signUpContacts(b: Builder, rand: Rand, p: Person, perturb: boolean): Pick<Fields, 'emails' | 'phones'> {
  const h = p.household;
  const emails: RecordIdentifier[] = [];
  const r = rand();
  if (perturb && r < 0.1) {
    emails.push({ value: b.email(rand, p.given, p.family, p.birth[0], h.country), verified: rand() < 0.6 });
  } else if (r >= (perturb ? 0.18 : 0.06) && p.emails.length > 0) {
    const own = perturb ? oneOf(rand, p.emails) : (p.emails[0] as RecordIdentifier);
    emails.push({
      value: rand() < (perturb ? 0.35 : 0.1) ? emailVariant(rand, own.value) : own.value,
      verified: rand() < 0.6,
    });
  }
  if (p.familyEmail && h.familyEmail && rand() < 0.3) emails.push({ value: h.familyEmail, verified: rand() < 0.5 });
  const phones: RecordIdentifier[] = [];
  const q = rand();
  if ((perturb && q < 0.12) || (p.phones.length === 0 && q < 0.5)) {
    phones.push({ value: formatPhone(rand, b.mobile(rand, h.address.place, false)), verified: rand() < 0.7 });
  } else if (q >= (perturb ? 0.22 : 0.12) && p.phones.length > 0) {
    const own = perturb ? oneOf(rand, p.phones) : (p.phones[0] as Phone);
    phones.push({ value: formatPhone(rand, own), verified: rand() < 0.7 });
  }
  if (p.landline && h.landline && rand() < 0.2) phones.push({ value: formatPhone(rand, h.landline), verified: false });
  return { emails, phones };
}

function signUpThings(b: Builder, rand: Rand, p: Person, perturb: boolean): Pick<Fields, 'devices' | 'cards'> {
  const h = p.household;
  const devices: RecordDevice[] = [];
  const r = rand();
  if (perturb) {
    if (r < 0.45) {
      const own = oneOf(rand, p.devices);
      devices.push({ ...own, ip: rand() < 0.3 ? oneOf(rand, b.carrierIps[h.country]) : own.ip });
    } else if (r < 0.75 || (r < 0.85 && !(p.usesTablet && h.tablet))) devices.push(b.device(b.homeIp(rand, h.country)));
    else if (r < 0.85 && h.tablet) devices.push({ ...h.tablet });
  } else {
    if (p.usesTablet && h.tablet && r < 0.85) devices.push({ ...h.tablet });
    if (rand() < 0.6) devices.push({ ...(p.devices[0] as RecordDevice) });
  }
  const cards: RecordCard[] = [];
  const c = rand();
  if (perturb) {
    if (c < 0.45 && p.cards.length > 0) {
      const own = oneOf(rand, p.cards);
      // A reissued card: the same number (so the same fingerprint), a new expiry.
      cards.push(rand() < 0.2 ? { ...own, expiry_year: (own.expiry_year ?? 2026) + 3 } : { ...own });
    } else if (c < 0.65) cards.push(b.card(rand, h.country));
  } else {
    if (c < 0.6 && p.cards.length > 0) cards.push({ ...(p.cards[0] as RecordCard) });
    if (p.parentCard && rand() < 0.7) cards.push({ ...p.parentCard });
  }
  return { devices, cards };
}

/**
 * A sign-up's fields for the person: `perturb` for someone on file coming back (typos, nicknames,
 * moves, new identifiers, only some attributes), else the person's own values as typed once more.
 */
function signUpRecord(b: Builder, rand: Rand, p: Person, perturb: boolean): Fields {
  const h = p.household;
  const [given, family] = signUpNames(rand, p, perturb);
  const birth = signUpBirthDate(rand, p, perturb);
  const a = rand();
  const addresses =
    perturb && a < 0.2
      ? [renderAddress(rand, b.address(rand, oneOf(rand, PLACES[h.country])), true)]
      : a < (perturb ? 0.28 : 0.06)
        ? []
        : [renderAddress(rand, h.address, true)];
  const fields: Fields = {
    given_name: given,
    family_name: family,
    birth_date: birth,
    ...signUpContacts(b, rand, p, perturb),
    addresses,
    ...signUpThings(b, rand, p, perturb),
  };
  if (perturb && rand() < 0.15) {
    // Only some attributes: the names and one kind of contact point.
    const keep = oneOf(rand, ['emails', 'phones', 'addresses'] as const);
    for (const k of ['emails', 'phones', 'addresses', 'devices', 'cards'] as const) if (k !== keep) fields[k] = [];
    if (rand() < 0.5) fields.birth_date = null;
  }
  return fields;
}

// ---- the set ----------------------------------------------------------------------------

/** People to draw sign-ups from, in a seeded order; once all have been drawn it starts over. */
class Pool {
  private next = 0;
  constructor(readonly people: Person[]) {}
  draw(): Person | null {
    if (this.people.length === 0) return null;
    return this.people[this.next++ % this.people.length] as Person;
  }
}

type Hazard = 'kioskDevice' | 'companyCard' | 'forwardingAddress';
const HAZARDS: Hazard[] = ['kioskDevice', 'companyCard', 'forwardingAddress'];

/** For each shared value, the unrelated people on file who carry it: one per household, in a seeded draw. */
function chooseCarriers(seed: number, onFile: Person[]): Record<Hazard, Set<Person>> {
  const carriers = {} as Record<Hazard, Set<Person>>;
  HAZARDS.forEach((hazard, k) => {
    const households = new Set<Household>();
    const chosen = new Set<Person>();
    for (const p of shuffle([...onFile], streamOf(seed, k, P.hazards))) {
      if (chosen.size === ADVERSARIAL.sharedBy[hazard]) break;
      if (households.has(p.household)) continue;
      households.add(p.household);
      chosen.add(p);
    }
    carriers[hazard] = chosen;
  });
  return carriers;
}

function withHazards(fields: Fields, p: Person, carriers: Record<Hazard, Set<Person>>): Fields {
  if (carriers.kioskDevice.has(p)) fields.devices.push({ ...ADVERSARIAL.kioskDevice });
  if (carriers.companyCard.has(p)) fields.cards.push({ ...ADVERSARIAL.companyCard });
  if (carriers.forwardingAddress.has(p)) fields.addresses.push({ ...ADVERSARIAL.forwardingAddress });
  return fields;
}

type Kind = 'returning' | 'relative' | 'twin' | 'stranger' | 'adversarial';

/** The sign-ups' kinds: each slice's rounded share of `n`, dealt in a seeded order. */
function kindsOf(seed: number, n: number, twinsAvailable: number): Kind[] {
  const returning = Math.round(n * SLICE_SHARES.returning);
  const relatives = Math.round(n * SLICE_SHARES.relative);
  const strangers = Math.min(n - returning - relatives, Math.round(n * SLICE_SHARES.stranger));
  const adversarial = Math.max(0, n - returning - relatives - strangers);
  const twins = Math.min(twinsAvailable, Math.round(relatives * TWIN_SHARE_OF_RELATIVES));
  const kinds: Kind[] = [
    ...Array<Kind>(returning).fill('returning'),
    ...Array<Kind>(relatives - twins).fill('relative'),
    ...Array<Kind>(twins).fill('twin'),
    ...Array<Kind>(strangers).fill('stranger'),
    ...Array<Kind>(adversarial).fill('adversarial'),
  ];
  return shuffle(kinds, streamOf(seed, 0, P.order));
}

class SignUps {
  private readonly pools: Record<Exclude<Kind, 'adversarial'>, Pool>;
  private readonly familyEmailers: Pool;
  private readonly onFile: Person[];
  private adversarial = 0;

  constructor(
    private readonly b: Builder,
    people: Person[],
    private readonly carriers: Record<Hazard, Set<Person>>,
  ) {
    const seed = b.seed;
    const order = (k: number, ps: Person[]): Pool => new Pool(shuffle(ps, streamOf(seed, k, P.pools)));
    const known = new Set(people.filter((p) => p.onFile).map((p) => p.household));
    this.onFile = people.filter((p) => p.onFile);
    this.pools = {
      returning: order(1, [...this.onFile]),
      twin: order(2, this.twinsOffFile(people)),
      relative: order(
        3,
        people.filter((p) => !p.onFile && !p.twin?.onFile && known.has(p.household)),
      ),
      stranger: order(
        4,
        people.filter((p) => !known.has(p.household)),
      ),
    };
    const sharesWithFile = (p: Person): boolean =>
      p.household.members.some((q) => q !== p && q.familyEmail && q.onFile);
    this.familyEmailers = order(
      5,
      people.filter((p) => p.familyEmail && sharesWithFile(p)),
    );
  }

  twinsOffFile(people: Person[]): Person[] {
    return people.filter((p) => !p.onFile && p.twin?.onFile === true);
  }

  /** The kind's next person; a kind whose pool is dry falls back to the next (the slice says which it was). */
  private person(kind: Exclude<Kind, 'adversarial'>): [Person, Kind] {
    const fallbacks: Record<typeof kind, Exclude<Kind, 'adversarial'>[]> = {
      returning: ['returning', 'stranger', 'relative'],
      twin: ['twin', 'relative', 'stranger', 'returning'],
      relative: ['relative', 'stranger', 'returning'],
      stranger: ['stranger', 'relative', 'returning'],
    };
    for (const k of fallbacks[kind]) {
      const p = this.pools[k].draw();
      if (p) return [p, k];
    }
    throw new Error('no people to sign up: the population is empty');
  }

  make(kind: Kind, i: number): LabelledRecord {
    const rand = streamOf(this.b.seed, i, P.signUp);
    const id = `s-${i + 1}`;
    if (kind === 'adversarial') return this.makeAdversarial(rand, id);
    const [p, slice] = this.person(kind);
    return labelled(id, p, slice, signUpRecord(this.b, rand, p, slice === 'returning'));
  }

  /** Someone not on file when there is one (else a relative, else someone on file). */
  private newcomer(): Person {
    return this.pools.stranger.draw() ?? this.pools.relative.draw() ?? this.person('returning')[0];
  }

  private makeAdversarial(rand: Rand, id: string): LabelledRecord {
    const kinds = [...HAZARDS, 'squat', 'familyEmail'] as const;
    let kind: (typeof kinds)[number] = kinds[this.adversarial++ % kinds.length] as (typeof kinds)[number];
    if (kind === 'familyEmail' && this.familyEmailers.people.length === 0) kind = 'kioskDevice';
    if (kind === 'squat') {
      const p = this.newcomer();
      const fields = signUpRecord(this.b, rand, p, p.onFile);
      const victim = this.victim(rand, p);
      if (victim) fields.emails = [{ value: (victim.emails[0] as RecordIdentifier).value, verified: false }];
      return labelled(id, p, 'adversarial', fields);
    }
    if (kind === 'familyEmail') {
      const p = this.familyEmailers.draw() as Person;
      const fields = signUpRecord(this.b, rand, p, p.onFile);
      const value = p.household.familyEmail as string;
      fields.emails = [{ value, verified: true }, ...fields.emails.filter((e) => e.value !== value)];
      return labelled(id, p, 'adversarial', fields);
    }
    let p = this.newcomer();
    if (rand() >= 0.6) {
      // Someone on file (not one of those already carrying the value) comes through the hazard.
      for (let k = 0; k < 5; k++) {
        p = this.person('returning')[0];
        if (!this.carriers[kind].has(p)) break;
      }
    }
    const fields = signUpRecord(this.b, rand, p, p.onFile);
    if (kind === 'kioskDevice') fields.devices = [{ ...ADVERSARIAL.kioskDevice }];
    else if (kind === 'companyCard') fields.cards = [{ ...ADVERSARIAL.companyCard }];
    else fields.addresses = [{ ...ADVERSARIAL.forwardingAddress }];
    return labelled(id, p, 'adversarial', fields);
  }

  /** Someone on file, with an email, other than `p`: whose address the squatter takes. */
  private victim(rand: Rand, p: Person): Person | null {
    for (let k = 0; k < 50 && this.onFile.length > 0; k++) {
      const v = oneOf(rand, this.onFile);
      if (v !== p && v.emails.length > 0) return v;
    }
    return null;
  }
}

/**
 * A seeded synthetic population of `households` households and `signUps` sign-ups against the
 * ~70 % of its people on file, labelled by person (see the module's comment). The same options
 * give the same set.
 */
export function generateHouseholds(opts: { seed: number; households: number; signUps: number }): LabelledSet {
  const b = new Builder(opts.seed);
  const people: Person[] = [];
  for (let h = 0; h < opts.households; h++) people.push(...makeHousehold(b, h, people.length).members);
  for (const p of people) p.onFile = streamOf(opts.seed, p.n, P.onFile)() < 0.7;
  const onFilePeople = people.filter((p) => p.onFile);
  const carriers = chooseCarriers(opts.seed, onFilePeople);
  const onFile = onFilePeople.map((p, k) =>
    labelled(`f-${k + 1}`, p, 'on-file', withHazards(fileRecord(b, p), p, carriers)),
  );
  const signUps = new SignUps(b, people, carriers);
  const kinds = kindsOf(opts.seed, opts.signUps, signUps.twinsOffFile(people).length);
  return { name: 'households', onFile, signUps: kinds.map((kind, i) => signUps.make(kind, i)) };
}
