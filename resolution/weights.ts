/**
 * The match model's table (resolution/model.ts), version 2026-12-02.2: estimated by
 * `npm run resolution:fit -- --write` from households-1, febrl1. Generated; a new
 * table is a new version, adopted in review with the figures the fit prints.
 */
import type { ModelTable } from './model';

export const MATCH_MODEL: ModelTable = {
  version: '2026-12-02.2',
  trainedOn: ['households-1', 'febrl1'],
  levels: {
    given_name: {
      exact: {
        m: 0.823916,
        u: 0.00458572,
        split: 1,
      },
      nickname: {
        m: 0.0718353,
        u: 0.0015421,
      },
      close: {
        m: 0.0678931,
        u: 0.000701482,
      },
      initial: {
        m: 0.00043802,
        u: 0.00000579737,
      },
      different: {
        m: 0.0359177,
        u: 0.993165,
      },
    },
    family_name: {
      exact: {
        m: 0.893208,
        u: 0.0126972,
        split: 1,
      },
      close: {
        m: 0.0760359,
        u: 0.00138,
      },
      different: {
        m: 0.0307561,
        u: 0.985923,
      },
    },
    birth_date: {
      exact: {
        m: 0.810797,
        u: 0.0000390285,
      },
      partial: {
        m: 0.0968718,
        u: 0.00139201,
      },
      swap: {
        m: 0.0105954,
        u: 0.0000195142,
      },
      typo: {
        m: 0.0539859,
        u: 0.00511923,
      },
      near: {
        m: 0.00756811,
        u: 0.00286859,
      },
      different: {
        m: 0.0201816,
        u: 0.990562,
      },
    },
    email: {
      exact_verified: {
        m: 0.468668,
        u: 0.00000742578,
        split: 0.491803,
      },
      exact: {
        m: 0.421671,
        u: 0.00000742578,
        split: 0.508197,
      },
      local_close: {
        m: 0.0567885,
        u: 0.000200496,
      },
      different: {
        m: 0.0528721,
        u: 0.999785,
      },
    },
    phone: {
      exact_verified: {
        m: 0.398162,
        u: 0.00000669277,
        split: 0.0153846,
      },
      exact: {
        m: 0.457887,
        u: 0.0000133855,
        split: 0.984615,
      },
      typo: {
        m: 0.014293,
        u: 0.00000669277,
      },
      different_verified: {
        m: 0.0729964,
        u: 0.522919,
      },
      different: {
        m: 0.0566616,
        u: 0.477054,
      },
    },
    address: {
      exact: {
        m: 0.688525,
        u: 0.000251107,
        split: 1,
      },
      close: {
        m: 0.0477338,
        u: 0.00000612456,
      },
      street: {
        m: 0.0356798,
        u: 0.0000122491,
      },
      postcode: {
        m: 0.0192864,
        u: 0.00190474,
      },
      different: {
        m: 0.208775,
        u: 0.997826,
      },
    },
    device: {
      exact: {
        m: 0.559384,
        u: 0.000419251,
        split: 1,
      },
      network: {
        m: 0.000733138,
        u: 0.000342246,
      },
      different: {
        m: 0.439883,
        u: 0.999239,
      },
    },
    card: {
      fingerprint: {
        m: 0.655556,
        u: 0.000157588,
        split: 1,
      },
      details: {
        m: 0.0155556,
        u: 0.0000131323,
      },
      different: {
        m: 0.328889,
        u: 0.999829,
      },
    },
  },
  returningRate: 0.528,
  calibration: {
    intercept: 3.15595,
    weights: {
      household: 0.550537,
      person: 0.531881,
      accounts: 0.190191,
      household_conflict: -0.620914,
      household_unattested: -0.57972,
      household_both_conflict: -1.26107,
    },
  },
};
