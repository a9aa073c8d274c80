import { describe, expect, it } from 'vitest';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl } from '../src/bindings/backend/backend.did';
import { idlFactory as personalIdl } from '../src/bindings/personal/personal.did';
import {
  CapsuleCallError,
  FactoryCallError,
  RejectError,
  describeBlobError,
  describeCapsuleError,
  describeError,
  describeFactoryError,
  describeState,
  formatBytes,
  formatCycles,
  unwrapCapsule,
  unwrapFactory,
} from '../src/client/errors';
import type { BlobError, CapsuleError, FactoryError } from '../src/client/types';
import { CREATION_STATES } from '../src/client/types';
import { errType, everyCase, variantField } from './idl';

// The variants come from the generated IDL, so a variant added to a .did file (and the
// bindings regenerated) shows up here even before anyone writes its message.
const factoryError = errType(backendIdl, 'get_creation_status');
const capsuleError = errType(backendIdl, 'get_capsule');
const blobError = variantField(capsuleError, 'Blob');

function expectSentence(msg: string, variant: string) {
  expect(msg, variant).toMatch(/^[A-Z"“]/);
  expect(msg, variant).toMatch(/[.!]$/);
  expect(msg, variant).not.toMatch(/undefined|null|\[object|NaN/);
  expect(msg, variant).not.toContain('this page does not know');
  // The variant's own name is for programs, not people.
  expect(msg, variant).not.toContain(variant);
}

describe('every FactoryError variant has a sentence', () => {
  const cases = everyCase(factoryError);
  it('covers the variants of the .did file', () => {
    expect(cases.map(([n]) => n).sort()).toEqual(
      [
        'Anonymous', 'ApiVersionMismatch', 'CallFailed', 'CallNotEnqueued', 'CallUnaffordable', 'CancelledByAdmin', 'CleanupFailed',
        'CleanupInProgress', 'CreateOutcomeUnknown', 'CreationDisabled', 'DailyCycleBudgetReached',
        'DailyLimitReached', 'DepositFailed', 'ExportFailed', 'ExportManifestMissing',
        'HandoffUnconfirmed', 'ImportFailed', 'InstallArgUnencodable', 'InsufficientCycles', 'Internal', 'InvalidArgument', 'InvalidConfig',
        'InvalidState', 'ModuleHashMismatch',
        'NoCapsule', 'NoCreation', 'NotAdmin', 'NotController', 'OwnerDailyLimitReached', 'ReplyUndecodable', 'RootMismatch', 'SponsorLimitReached', 'TimedOut',
        'UnknownMigration', 'UntrustedReply',
      ].sort(),
    );
  });
  for (const [name, value] of cases) {
    it(name, () => {
      const msg = describeFactoryError(value as FactoryError);
      expectSentence(msg, name);
      const e = new FactoryCallError(value as FactoryError);
      expect(e.kind).toBe(name);
      expect(e.message).toBe(msg);
    });
  }
});

describe('every capsule Error variant has a sentence', () => {
  const cases = everyCase(capsuleError);
  it('is the same error type on the personal canister', () => {
    expect(errType(personalIdl, 'get_capsule').display()).toBe(capsuleError.display());
  });
  for (const [name, value] of cases) {
    it(name, () => {
      const msg = describeCapsuleError(value as CapsuleError);
      expectSentence(msg, name);
      expect(new CapsuleCallError(value as CapsuleError).kind).toBe(name);
    });
  }
});

describe('every BlobError variant has a sentence', () => {
  const cases = everyCase(blobError as never);
  expect(cases.length).toBeGreaterThan(15);
  for (const [name, value] of cases) {
    it(name, () => {
      const msg = describeBlobError(value as BlobError);
      expectSentence(msg, name);
      expect(describeCapsuleError({ Blob: value as BlobError })).toBe(msg);
    });
  }
});

describe('messages carry the details people need', () => {
  it('InsufficientCycles says the service is out of funds and to try later', () => {
    expect(
      describeFactoryError({ InsufficientCycles: { required: 2_500_000_000_000n, available: 1_000_000_000_000n } }),
    ).toBe(
      'The service is out of funds for new canisters right now (needs 2.50 T cycles, has 1.00 T cycles); try again later.',
    );
  });
  it('CapsuleMoved names the personal canister', () => {
    const id = Principal.fromText('bd3sg-teaaa-aaaaa-qaaba-cai');
    expect(describeCapsuleError({ CapsuleMoved: { canister_id: id } })).toContain(id.toText());
  });
  it('CapsuleFrozen gives the reason', () => {
    expect(describeCapsuleError({ CapsuleFrozen: { reason: 'migration 4 in progress' } })).toBe(
      'Your capsule is read-only for now (migration 4 in progress); changes are possible again once that is over.',
    );
  });
  it('CallFailed names the step and the reject', () => {
    expect(describeFactoryError({
        CallFailed: { code: 4, reject: [{ CanisterReject: null }], step: 'install_code', message: 'out of cycles' },
      })).toBe(
      "The service's call to install code failed (reject code 4: out of cycles). Your data is unchanged; try again.",
    );
  });
  it('InvalidState says the state in words', () => {
    expect(describeFactoryError({ InvalidState: { expected: 'Failed', state: { Importing: null } } })).toContain(
      'while the creation is copying your data',
    );
  });
  it('TimedOut gives the time bound and the state in words, and says to ask again', () => {
    expect(describeFactoryError({ TimedOut: { seconds: 3600n, state: { Importing: null } } })).toBe(
      'The creation took longer than 3600 s while copying your data and was stopped; ask again to retry.',
    );
    expect(describeFactoryError({ TimedOut: { seconds: 600n, state: { Creating: null } } })).toBe(
      'The creation took longer than 600 s while creating the canister and was stopped; ask again to retry.',
    );
  });
  it('CleanupInProgress names the move and says to wait', () => {
    expect(describeFactoryError({ CleanupInProgress: { migration_id: 12n } })).toBe(
      'The service is still cleaning up after move number 12; wait for it to finish, then try again.',
    );
  });
  it('CancelledByAdmin says who stopped the creation and in which state', () => {
    expect(describeFactoryError({ CancelledByAdmin: { state: { Verifying: null } } })).toBe(
      'An administrator stopped this creation while it was verifying the copy. Your data is unchanged; try again later.',
    );
  });
  it('UntrustedReply names the step in words and the reason', () => {
    expect(
      describeFactoryError({ UntrustedReply: { step: 'api_version', reason: 'wrong magic bytes' } }),
    ).toBe(
      "The new canister's answer to api version could not be read (wrong magic bytes), so the move was stopped for your safety. Your data is unchanged; try again.",
    );
  });
  it('CreateOutcomeUnknown says the outcome of the creation is unknown', () => {
    expect(describeFactoryError({ CreateOutcomeUnknown: null })).toBe(
      'The service was updated while it was creating your canister, so it cannot tell whether the canister was made. Your data is unchanged; try again.',
    );
  });
  it('Internal gives the detail and asks for a report', () => {
    expect(describeFactoryError({ Internal: { detail: 'migration 3 is Importing without a canister' } })).toBe(
      'The service ran into an unexpected problem (migration 3 is Importing without a canister); please report it, then try again later.',
    );
  });
  it('InvalidConfig names the setting and gives the reason', () => {
    expect(
      describeFactoryError({ InvalidConfig: { field: 'max_in_flight', reason: 'must be at least 1' } }),
    ).toBe('The setting max_in_flight was refused: must be at least 1.');
  });
  it('InvalidArgument gives the reason', () => {
    expect(describeFactoryError({ InvalidArgument: { reason: 'the cycles amount must be positive' } })).toBe(
      'That request was refused: the cycles amount must be positive.',
    );
  });
  it('DailyLimitReached counts attempts, not canisters created', () => {
    expect(describeFactoryError({ DailyLimitReached: { limit: 50 } })).toBe(
      'The service has reached its limit of 50 creation attempts for today; try again tomorrow.',
    );
  });
  it('DailyCycleBudgetReached gives the budget, what is spent and what is needed', () => {
    expect(
      describeFactoryError({
        DailyCycleBudgetReached: { budget: 100_000_000_000_000n, spent: 99_500_000_000_000n, required: 1_000_000_000_000n },
      }),
    ).toBe(
      "New canisters have used 99.50 T cycles of today's 100 T cycles budget and yours needs 1.00 T cycles; your data is unchanged, try again tomorrow.",
    );
  });
  it('OwnerDailyLimitReached gives the per-person limit and says to try tomorrow', () => {
    expect(describeFactoryError({ OwnerDailyLimitReached: { limit: 5 } })).toBe(
      'You have made 5 attempts today, the most one person may; try again tomorrow.',
    );
  });
  it('BlobTooLarge gives sizes in bytes people read', () => {
    expect(describeBlobError({ BlobTooLarge: { size: 5_000_000_000n, max: 2_000_000_000n } })).toBe(
      'The file is too large (5.0 GB; at most 2.0 GB).',
    );
  });
  it('an unknown variant (newer canister than page) still gives a sentence', () => {
    expect(describeFactoryError({ SomethingNew: null } as unknown as FactoryError)).toBe(
      'The service reported an error this page does not know (SomethingNew).',
    );
  });
});

describe('describeState', () => {
  it('has words for every state', () => {
    for (const s of [...CREATION_STATES, 'Failed'] as const) {
      expect(describeState(s)).not.toBe(s);
      expect(describeState({ [s]: null } as never)).toBe(describeState(s));
    }
  });
});

describe('transport errors', () => {
  it('RejectError explains the reject code', () => {
    const e = new RejectError(5, 'IC0503', 'Canister trapped: boom', 'add_memory');
    expect(e.message).toBe('The canister ran into an error: Canister trapped: boom');
    expect(new RejectError(42, 'X', '', 'm').message).toBe('The call was rejected (code 42): X');
  });
  it('describeError handles every kind of thrown value', () => {
    expect(describeError(new TypeError('Failed to fetch'))).toBe(
      'The service cannot be reached; check your connection and try again.',
    );
    expect(describeError(new FactoryCallError({ CreationDisabled: null }))).toBe(
      'Creating personal canisters is switched off for now; try again later.',
    );
    expect(describeError(new Error('boom'))).toBe('Something went wrong: boom');
    expect(describeError('odd')).toBe('Something went wrong: odd');
  });
  it('unwrap helpers return Ok and throw Err', () => {
    expect(unwrapCapsule({ Ok: 1 })).toBe(1);
    expect(() => unwrapCapsule({ Err: { CapsuleNotFound: null } })).toThrow(CapsuleCallError);
    expect(unwrapFactory({ Ok: 2 })).toBe(2);
    expect(() => unwrapFactory({ Err: { NotAdmin: null } })).toThrow(FactoryCallError);
  });
});

describe('formatting', () => {
  it('formats bytes and cycles', () => {
    expect(formatBytes(1)).toBe('1 byte');
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(262_144)).toBe('262 kB');
    expect(formatBytes(1_500_000n)).toBe('1.5 MB');
    expect(formatCycles(500_000_000_000n)).toBe('0.50 T cycles');
    expect(formatCycles(123_000_000_000_000n)).toBe('123 T cycles');
  });
});
