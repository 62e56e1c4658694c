/**
 * What a customer does on their own page (api/console/me.tsx), each a ConsoleAction (confirm, then
 * act, through api/console/app.tsx): remove a card or make one the default, remove a device or an
 * address that is not theirs any more, contest an entry of their history, erase their data.
 *
 * The customer is always the session's subject, never a form field: a form names only the card,
 * device, address or entry, and the graph refuses (404) one that is not that customer's. Each step
 * goes through the api's own services, whose guards hold (api/services/guards.ts): a suspended
 * customer's own token changes nothing (403), erasure needs a recent sign-in (401, in words here).
 * The guard is asked before the confirmation too, so nobody confirms what will be refused.
 */
import { randomUUID } from 'node:crypto';
import { CONTEST_WORDS_MAX } from '../../graph/audit';
import { getAddressesByCustomer } from '../../graph/addresses';
import { getDevicesByCustomer } from '../../graph/devices';
import { InvalidInputError, InvalidStateError, NotFoundError } from '../../graph/errors';
import type { CustomerAddress, CustomerDevice } from '../../graph/model';
import { AuthError, type Principal } from '../auth';
import type { ApiDeps } from '../deps';
import {
  chooseDefaultInWallet,
  listWallet,
  removeAddress,
  removeDevice,
  removeFromWallet,
} from '../services/customers';
import { contestEntry, historyEntry } from '../services/events';
import { guardCustomerAction } from '../services/guards';
import { requestErasure } from '../services/privacy';
import { field, when, type ConsoleAction, type FormFields } from './kit';
import { maskOpaque, maskStreet } from './mask';
import { cardWords, durationWords, expiryWords, nextDefault, selfOf } from './meWords';
import type { ConsoleSession } from './session';

function customerOf(session: ConsoleSession): string {
  const id = selfOf(session.principal);
  if (!id) throw new AuthError(403, 'Forbidden: only a customer’s own token has a page of its own.');
  return id;
}

/** The step-up refusal in the customer's words (the console's error page shows it). */
async function withStepUp<T>(deps: ApiDeps, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AuthError && err.hint.type === 'fresh-sign-in-required')
      throw new AuthError(
        401,
        `To ${what}, you need to have signed in within the last ${durationWords(deps.auth.recentAuthSeconds)}, ` +
          'and your sign-in is older: sign in again with a fresh token (the console’s sign-in page, ' +
          '/console/sign-in), then repeat the step.',
        err.hint,
      );
    throw err;
  }
}

async function cardOf(deps: ApiDeps, customerId: string, form: FormFields) {
  const id = field(form, 'payment_method_id');
  const wallet = (await listWallet(deps.graph, customerId)).data;
  const card = wallet.find((c) => c.id === id);
  if (!card) throw new NotFoundError('Payment method', id);
  return { card, wallet };
}

// A device or address the customer removed (disowned) already is still found, so that the same form
// posted twice (a double click, a second tab) is answered as done, not 404.
async function deviceOf(deps: ApiDeps, customerId: string, form: FormFields): Promise<CustomerDevice> {
  const id = field(form, 'device_id');
  const devices = await getDevicesByCustomer(deps.graph, customerId, { includeDisowned: true });
  const device = devices.find((d) => d.id === id);
  if (!device) throw new NotFoundError('Device', id);
  return device;
}

async function addressOf(deps: ApiDeps, customerId: string, form: FormFields): Promise<CustomerAddress> {
  const id = field(form, 'address_id');
  const addresses = await getAddressesByCustomer(deps.graph, customerId, { includeDisowned: true });
  const address = addresses.find((a) => a.id === id);
  if (!address) throw new NotFoundError('Address', id);
  return address;
}

const deviceWords = (d: CustomerDevice) => `the device ${maskOpaque(d.fingerprint)} (last seen ${when(d.last_login)})`;
const addressWords = (a: CustomerAddress) => `the address ${maskStreet(a.street1)}, ${a.city}, ${a.country}`;
const removedAlready = (what: string, at: string) => `You removed ${what} on ${when(at)} already: nothing changes.`;

function contestWords(form: FormFields): string {
  const words = field(form, 'words', 'say what is wrong');
  if ((form.words ?? '').length > CONTEST_WORDS_MAX)
    throw new InvalidInputError('words', `at most ${CONTEST_WORDS_MAX} characters`);
  return words;
}

const ERASURE_DELETES = [
  'Erasing deletes, for good: your contact details (email addresses and phone numbers); your payment methods ' +
    'and their payment tokens; your addresses and devices (one that other people also use only loses its link ' +
    'to you); your behavioural profile; and what every entry of your history says (each keeps only its kind ' +
    'and time).',
  'Processes running for you (a payment recovery, for one) are stopped first, and the keys of their records ' +
    'are destroyed, so nothing they held about you can be read again.',
  'What stays: your customer number, with the status “erased” and its dates. This cannot be undone.',
  'If a review of your account is pending, the erasure waits until the review has ended.',
];

const self = (p: Principal) => selfOf(p) !== null;
/** The acting principal, as the services take it (a customer's own token gives no reason). */
export const actor = (session: ConsoleSession) => ({ principal: session.principal });

/**
 * The guard the service runs again when it acts (a suspended customer's own token is refused, 403),
 * asked before the confirmation too, so nobody is asked to confirm what will be refused. It only
 * reads: a customer's own token gives no reason to record.
 */
async function mayChange(
  deps: ApiDeps,
  session: ConsoleSession,
  action: 'remove_payment_method' | 'set_default_payment_method' | 'remove_device' | 'remove_address',
): Promise<string> {
  const id = customerOf(session);
  await guardCustomerAction(deps, id, action, { principal: session.principal, routeScopes: ['customers:write'] });
  return id;
}

/** A card out of the wallet, with its payment token; a default's place goes to the most recently used active card. */
function removeCardAction(): ConsoleAction {
  return {
    name: 'remove-card',
    allowed: self,
    confirm: async (deps, form, session) => {
      const { card, wallet } = await cardOf(deps, await mayChange(deps, session, 'remove_payment_method'), form);
      const next = card.is_default ? nextDefault(wallet, card.id) : null;
      return {
        title: 'Remove this card?',
        danger: true,
        details: [
          `${cardWords(card)} (expires ${expiryWords(card)}) will be removed from your wallet, ` +
            'with its payment token.',
          ...(card.is_default
            ? [
                next
                  ? `It is your default card: ${cardWords(next)}, your most recently used active card, ` +
                    'becomes the default.'
                  : 'It is your default card, and no other active card is left to take its place.',
              ]
            : []),
        ],
      };
    },
    run: async (deps, form, session) => {
      const id = customerOf(session);
      const { card, wallet } = await cardOf(deps, id, form);
      const { promoted } = await removeFromWallet(deps, id, card.id, actor(session));
      const now = promoted ? wallet.find((c) => c.id === promoted) : undefined;
      return {
        title: 'Card removed',
        details: [
          `${cardWords(card)} is no longer in your wallet.`,
          ...(card.is_default
            ? [now ? `Your default card is now ${cardWords(now)}.` : 'You have no default card now.']
            : []),
        ],
      };
    },
  };
}

/** An active card made the default. */
function defaultCardAction(): ConsoleAction {
  return {
    name: 'default-card',
    allowed: self,
    confirm: async (deps, form, session) => {
      const { card } = await cardOf(deps, await mayChange(deps, session, 'set_default_payment_method'), form);
      if (card.is_default) throw new InvalidStateError(`${cardWords(card)} is your default card already`);
      if (card.status !== 'active')
        throw new InvalidStateError(`${cardWords(card)} is ${card.status}: only an active card can be the default`);
      return {
        title: 'Make this card your default?',
        details: [
          `${cardWords(card)} (expires ${expiryWords(card)}) will be your default card: payments use it first.`,
        ],
      };
    },
    run: async (deps, form, session) => {
      const id = customerOf(session);
      const { card } = await cardOf(deps, id, form);
      await chooseDefaultInWallet(deps, id, card.id, actor(session));
      return { title: 'Default card changed', details: [`${cardWords(card)} is now your default card.`] };
    },
  };
}

/** A device disowned: no longer listed nor trusted as theirs, its record kept for the fraud checks. */
function removeDeviceAction(): ConsoleAction {
  return {
    name: 'remove-device',
    allowed: self,
    confirm: async (deps, form, session) => {
      const device = await deviceOf(deps, await mayChange(deps, session, 'remove_device'), form);
      if (device.disowned_at)
        return { title: 'Remove this device?', details: [removedAlready(deviceWords(device), device.disowned_at)] };
      return {
        title: 'Remove this device?',
        danger: true,
        details: [
          `${deviceWords(device)} will no longer be listed as one of your devices, nor trusted as yours.`,
          'We keep the record of your sign-ins on it and of your cards used on it, to protect your account ' +
            '(our fraud checks read it). Signing in on it again makes it one of your devices again.',
          'Other people who use it are not affected.',
        ],
      };
    },
    run: async (deps, form, session) => {
      const id = customerOf(session);
      const device = await deviceOf(deps, id, form);
      await removeDevice(deps, id, device.id, actor(session));
      return { title: 'Device removed', details: [`${deviceWords(device)} is no longer one of your devices.`] };
    },
  };
}

/** An address disowned: no longer listed as theirs, what was shipped there kept. */
function removeAddressAction(): ConsoleAction {
  return {
    name: 'remove-address',
    allowed: self,
    confirm: async (deps, form, session) => {
      const address = await addressOf(deps, await mayChange(deps, session, 'remove_address'), form);
      if (address.disowned_at)
        return {
          title: 'Remove this address?',
          details: [removedAlready(addressWords(address), address.disowned_at)],
        };
      return {
        title: 'Remove this address?',
        danger: true,
        details: [
          `${addressWords(address)} will no longer be listed as one of your addresses.`,
          'We keep the record of what was shipped there. Shipping there again makes it one of your ' +
            'addresses again.',
          'Other people who use it are not affected.',
        ],
      };
    },
    run: async (deps, form, session) => {
      const id = customerOf(session);
      const address = await addressOf(deps, id, form);
      await removeAddress(deps, id, address.id, actor(session));
      return { title: 'Address removed', details: [`${addressWords(address)} is no longer one of your addresses.`] };
    },
  };
}

/** Words on an entry of the history, added as a new entry for ops to review. */
function contestAction(): ConsoleAction {
  return {
    name: 'contest',
    allowed: self,
    confirm: async (deps, form, session) => {
      const words = contestWords(form);
      const entry = await historyEntry(deps, customerOf(session), field(form, 'event_id'), 'customer');
      return {
        title: 'Contest this entry?',
        details: [
          `The entry of ${when(entry.occurred_at)}: “${entry.summary}”.`,
          `What you tell us: “${words}”`,
          'Your words are added to your history as a new entry, for our team to review; the entry itself ' +
            'stays as it is.',
        ],
      };
    },
    run: async (deps, form, session) => {
      const words = contestWords(form);
      const id = customerOf(session);
      const entry = await historyEntry(deps, id, field(form, 'event_id'), 'customer');
      const request = form.request_id?.trim() || randomUUID();
      await contestEntry(deps, id, { event_id: entry.id, words, request_id: request });
      return {
        title: 'Entry contested',
        details: [
          `We have your words on the entry of ${when(entry.occurred_at)}; our team will look at it.`,
          'Your history now shows that you contested it, newest first.',
        ],
      };
    },
  };
}

/** The erasure of their data (a recent sign-in needed). */
function eraseAction(): ConsoleAction {
  return {
    name: 'erase',
    allowed: self,
    confirm: async (deps, _form, session) => {
      // A merged record's own token is refused here (its survivor is not its to erase).
      await withStepUp(deps, 'erase your data', () =>
        guardCustomerAction(deps, customerOf(session), 'erasure', {
          principal: session.principal,
          routeScopes: ['ops'],
        }),
      );
      return { title: 'Erase your data?', danger: true, details: ERASURE_DELETES };
    },
    run: async (deps, _form, session) => {
      const started = await withStepUp(deps, 'erase your data', () =>
        requestErasure(deps, customerOf(session), actor(session)),
      );
      return {
        title: 'Erasure started',
        details: [
          `Your erasure has started (process ${started.workflow_id}). It runs by itself, in a few minutes at most.`,
          'Where it is: the “Erase your data” section of your page (My data) says so, and when it is done.',
        ],
      };
    },
  };
}

/** The customer's own actions, each `allowed` only for a customer's own token (api/console/kit.tsx). */
export function meActions(): ConsoleAction[] {
  return [
    removeCardAction(),
    defaultCardAction(),
    removeDeviceAction(),
    removeAddressAction(),
    contestAction(),
    eraseAction(),
  ];
}
