// What every screen of the signed-in dashboard may need.
import { createContext, useContext } from 'react';
import type { Objective, Organization, User } from './api';

export interface AppContextValue {
  me: User;
  organization: Organization;
  /** The organization's users (for owners and sharing); just `me` if unavailable. */
  users: User[];
  /** The objectives of the selected period, flat. */
  objectives: Objective[];
  /** The selected period, for new objectives' default dates. */
  period: { from: string; to: string };
  /** Bumped whenever the tree reloads, so open views reload too. */
  version: number;
  /** Reload the tree (and anything open). */
  reload: () => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside AppContext');
  return value;
}
