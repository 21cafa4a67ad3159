/** A device as the API returns it in JSON. */
export interface DeviceBody {
  _id: string;
  myId: string;
  deviceUID: string;
  createdAt: string;
  updatedAt: string;
}

/** An account as the API returns it in JSON. */
export interface AccountBody {
  _id: string;
  name: string;
  deviceIds: string[];
  createdAt?: string;
  updatedAt?: string;
  devices?: Array<Partial<DeviceBody>>;
}
