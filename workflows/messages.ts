import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ArchiveProgress, LockHolder } from '../src/shared/archive-types';
import type { ArchiveRunProgress } from '../src/shared/run-types';
import { LOCK_GRANTED_SIGNAL } from '../src/shared/run-types';

/** Live progress of an ArchiveTable run: `temporal workflow query --name progress`. */
export const progressQuery = defineQuery<ArchiveProgress>('progress');

/** Live progress of an ArchiveAll run: finished tables and the ones running now. */
export const runProgressQuery = defineQuery<ArchiveRunProgress>('progress');

/** Sent by the holdTableLock activity once the table's lock is held. */
export const lockGrantedSignal = defineSignal<[LockHolder]>(LOCK_GRANTED_SIGNAL);
