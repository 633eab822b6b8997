/**
 * Evaluators read a parent's weights from, and save adapted or fine-tuned models into, plain
 * folders under `store.artifactDir(study)`. This wrapper keeps those folders and the store in step,
 * so the artifacts live where every worker of the store can read them (in the database for
 * PostgreSQL): before an evaluation it fetches the parent's folder into this host's copy, after it
 * puts the saved folder into the store, before the trial is completed and its children can be
 * claimed. Paths outside the study's artifact folder are left alone.
 */
import type { Evaluator } from '../../evaluators/types.js';
import { artifactKeyOf, pullFolder, pushFolder } from '../../store/artifacts.js';
import type { Store } from '../../store/index.js';

export function withStoreArtifacts(evaluator: Evaluator, store: Store, study: string): Evaluator {
  return {
    capacity: evaluator.capacity,
    async evaluate(req) {
      const parentKey = req.parent && artifactKeyOf(store, study, req.parent.modelDir);
      if (req.parent && parentKey) await pullFolder(store, study, parentKey, req.parent.modelDir);
      const r = await evaluator.evaluate(req);
      const savedKey = req.saveTo === undefined ? null : artifactKeyOf(store, study, req.saveTo);
      if (req.saveTo !== undefined && savedKey !== null) await pushFolder(store, study, savedKey, req.saveTo);
      return r;
    },
    close: () => evaluator.close(),
  };
}
