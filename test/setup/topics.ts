/**
 * Setup of every integration file: after the file (its own afterAll hooks first), the Kafka
 * topics it made with `topicsForTest` are deleted.
 */
import { afterAll } from 'vitest';
import { deleteTestTopics } from '../support/kafka';

afterAll(deleteTestTopics, 60_000);
