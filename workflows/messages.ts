import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ArchiveProgress, LockHolder } from '../src/shared/archive-types';
import type { RestoreProgress } from '../src/shared/restore-types';
import type { ArchiveRunProgress } from '../src/shared/run-types';
import type { ValidateProgress } from '../src/shared/validate-types';
import { LOCK_GRANTED_SIGNAL } from '../src/shared/run-types';

/** Live progress of an ArchiveTable run: `temporal workflow query --name progress`. */
export const progressQuery = defineQuery<ArchiveProgress>('progress');

/** Live progress of an ArchiveAll run: finished tables and the ones running now. */
export const runProgressQuery = defineQuery<ArchiveRunProgress>('progress');

/** Live progress of a Validate run: tables done, objects checked, problems so far. */
export const validateProgressQuery = defineQuery<ValidateProgress>('progress');

/** Sent by the holdTableLock activity once the table's lock is held. */
export const lockGrantedSignal = defineSignal<[LockHolder]>(LOCK_GRANTED_SIGNAL);

/** Live progress of a Restore run: its plan, the object being restored, the totals so far. */
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');
