/** Customer notifications as workflows send them: once per key, each with a summary in words. */
import type { NotificationActivities } from '../activities/notifications';
import { activitiesWithSummaries, graphWrite } from './activityOptions';

const WHAT: Record<string, string> = {
  card_compromised: 'their card was declined as lost or stolen and is blocked',
  payment_recovered: 'the failed payment went through with another payment method',
  payment_failed: 'the failed payment could not be recovered',
  dunning_reminder: 'please add or update a payment method',
  account_takeover: 'someone may have taken over the account (verified email or phone only)',
  card_expiring: 'their default card expires soon',
  merge_consent: 'please confirm that two profiles are both yours (with the code in this message) to merge them',
};

export const notifications = activitiesWithSummaries<NotificationActivities>(graphWrite, {
  notifyCustomer: (req) =>
    `Tell customer ${req.customer_id}: ${WHAT[req.kind] ?? req.kind.replace(/_/g, ' ')} — sent once (key ${req.key})`,
});
