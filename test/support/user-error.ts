/** The UserError `fn` throws; fails the test when it throws nothing or something else. */
import { expect } from 'vitest';
import { UserError } from '../../src/core/errors.js';

export function userErrorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}
