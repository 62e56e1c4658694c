/**
 * A record as identity resolution reads it: what Persona holds about one customer (or what one
 * sign-up brings), as plain values. Pure data: graph/ reads it from the graph, the labelled data
 * sets (resolution/data/) build it from their files, and resolution/ compares two of them.
 * Values are as given; resolution/normalise.ts normalises them before they are compared.
 */

/** A date of birth as far as it is known: a year, a year and month, or a whole date. */
export interface PartialDate {
  year: number | null;
  month: number | null;
  day: number | null;
}

export interface RecordIdentifier {
  value: string;
  verified: boolean;
}

export interface RecordAddress {
  street1: string;
  street2: string | null;
  city: string | null;
  state: string | null;
  zip_code: string | null;
  /** ISO 3166-1 alpha-2. */
  country: string;
}

export interface RecordDevice {
  /** The device fingerprint. */
  fingerprint: string;
  /** The last IP address it was seen from (IPv4 or IPv6), when known. */
  ip: string | null;
}

export interface RecordCard {
  /** The processor's card fingerprint, when it gave one. */
  fingerprint: string | null;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
}

export interface ResolutionRecord {
  /** The customer's id (or the data set's record id). */
  id: string;
  given_name: string | null;
  family_name: string | null;
  /** `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, as given. */
  birth_date: string | null;
  emails: RecordIdentifier[];
  phones: RecordIdentifier[];
  addresses: RecordAddress[];
  devices: RecordDevice[];
  cards: RecordCard[];
}

/** A record of a labelled data set: which person it is (and which household, when it has one). */
export interface LabelledRecord extends ResolutionRecord {
  person: string;
  household: string | null;
  /** The slice it belongs to (`households`, `twins`, `adversarial`, ...), for figures per slice. */
  slice: string;
  /**
   * The country (ISO 3166-1 alpha-2) whose numbering plan its national phone numbers are written
   * in: the client's, as a sign-up form knows it, whether or not the record gives an address.
   */
  region: string;
}

/** A labelled data set: records on file, and sign-ups to resolve against them. */
export interface LabelledSet {
  name: string;
  onFile: LabelledRecord[];
  signUps: LabelledRecord[];
}

/** A record that holds nothing but its id, and what `over` gives it. */
export function emptyRecord(id: string, over: Partial<ResolutionRecord> = {}): ResolutionRecord {
  return {
    id,
    given_name: null,
    family_name: null,
    birth_date: null,
    emails: [],
    phones: [],
    addresses: [],
    devices: [],
    cards: [],
    ...over,
  };
}
