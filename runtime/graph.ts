/** The identity-graph handle as configured for this deployment. */
import type { CountryCode } from 'libphonenumber-js';
import type { Driver } from 'neo4j-driver';
import type { Config } from '../config/env';
import { createGraph, type Graph } from '../graph';

export function graphFromConfig(driver: Driver, config: Config): Graph {
  return createGraph(driver, config.NEO4J_DATABASE, config.tokenKey, {
    defaultPhoneRegion: config.PERSONA_DEFAULT_PHONE_REGION as CountryCode,
    sharedDeviceLimit: config.PERSONA_SHARED_DEVICE_LIMIT,
    reportingCurrency: config.PERSONA_REPORTING_CURRENCY,
  });
}
